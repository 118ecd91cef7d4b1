"""Hello, elves: Blumycelium's basic demo.

A ``Sender`` elf writes a greeting and a ``Printer`` elf prints it. Each is an ordinary class;
the ``hello`` pipeline reads like a plain function call chain, and elfc compiles it into two
jobs, the second waiting for the first.

Run it in this process (elves built locally, values going through the same JSON validation as a
distributed run)::

    python -c "from examples.hello.pipeline import hello; print(hello(name='elves'))"

or on the default mycelium, with each elf in its own worker process::

    elfc run examples/hello/pipeline.py:hello -a name=elves

The elves are plain classes, so they are unit-tested by plain calls::

    Sender().message("elves")   # 'Hello, elves!'
"""

from __future__ import annotations

from elfc import elf, named, pipeline, task


@elf
class Sender:
    """Writes a greeting to whoever is named."""

    def __init__(self, greeting: str = "Hello") -> None:
        self.greeting = greeting

    @task
    def message(self, name: str) -> str:
        """The greeting for ``name``."""
        return f"{self.greeting}, {name}!"


@elf
class Printer:
    """Prints every message it is given (in its worker's output)."""

    @task
    def show(self, message: str) -> str:
        """Print ``message`` and hand it back, so the pipeline can return it."""
        print(message)
        return message


sender = named(Sender, "sender", greeting="Hello")
printer = named(Printer, "printer")


@pipeline
def hello(name: str = "world") -> str:
    """Greet ``name``: the sender writes the message, the printer prints it."""
    return printer.show(sender.message(name))
