"""Invoices: payment reminders computed on typed task results, as Python computes them.

The ledger's tasks return dates, Decimals, an Enum and a dataclass; the pipeline does date
arithmetic, Decimal arithmetic, f-string formatting and string methods on them, and each
reminder is written by a mailer elf. In-process and on workers the values are the ones plain
Python gives: a date plus a timedelta is a date, ``Decimal("19.90") * Decimal("1.05")`` is
exact, ``Status.OPEN`` is not the string ``"open"``.

    elfc run examples/invoices/pipeline.py:reminders
    elfc run examples/invoices/pipeline.py:reminders -a terms_days=14
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from elfc import elf, named, pipeline, task


class Status(enum.Enum):
    OPEN = "open"
    DISPUTED = "disputed"


@dataclass
class Invoice:
    number: str
    customer: str
    issued: date
    amount: Decimal
    status: Status


LEDGER = {
    "A-1": Invoice("A-1", "ada lovelace", date(2026, 1, 12), Decimal("19.90"), Status.OPEN),
    "A-2": Invoice("A-2", "alan turing", date(2026, 2, 1), Decimal("120.00"), Status.DISPUTED),
    "A-3": Invoice("A-3", "grace hopper", date(2026, 2, 20), Decimal("7.35"), Status.OPEN),
}


@elf
class Ledger:
    """The books (a table here; a database in real life)."""

    @task
    def invoice(self, number: str) -> Invoice:
        return LEDGER[number]

    @task
    def today(self) -> date:
        return date(2026, 3, 15)  # fixed, so that the example's output never changes


@elf
class Mailer:
    """Sends reminders (here: returns the text it would send)."""

    @task
    def remind(self, customer: str, text: str) -> str:
        return f"to {customer}: {text}"


ledger = named(Ledger, "ledger")
mailer = named(Mailer, "mailer")

FEE = Decimal("1.05")


@pipeline
def reminders(numbers: tuple[str, ...] = ("A-1", "A-2", "A-3"), terms_days: int = 30) -> list[str]:
    """One reminder per invoice: its amount with a 5 % fee, when it was due, how late it is."""
    today = ledger.today()
    sent: list[str] = []
    for number in numbers:
        invoice = ledger.invoice(number)
        due = invoice.issued + timedelta(days=terms_days)
        text = (
            f"invoice {invoice.number}: {invoice.amount * FEE:.2f} EUR "
            f"({invoice.status.name.lower()}), due {due.isoformat()}, "
            f"{(today - due).days:+d} days past due"
        )
        sent.append(mailer.remind(invoice.customer.title(), text))
    return sent
