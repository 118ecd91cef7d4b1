"""Word statistics over the texts in ``texts/``: a small, realistic data pipeline.

- ``Reader`` reads one text file by name (from its own ``texts/`` directory, so a worker on
  another machine reads its local copy of the example).
- ``Counter`` counts the words of one text, leaving out its stop words.
- ``Merger`` adds the counts of all texts together.
- ``Reporter`` picks the ``top`` most frequent words (ties broken alphabetically).

The list of files is static: ``text_names()`` is a plain function that runs at submission, so the
``for`` loop unrolls into one read and one count job per file, and the counts of different files
run in parallel when ``Counter`` has several replicas.

Run it in this process::

    python -c "from examples.wordstats.pipeline import wordstats; print(wordstats(top=5))"

or on the default mycelium, each elf in its own worker process::

    elfc run examples/wordstats/pipeline.py:wordstats -a top=5
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from elfc import elf, named, pipeline, task

TEXTS = Path(__file__).resolve().parent / "texts"

STOP_WORDS_TEXT = """
a an and are as at be but by for from has have he her his in into is it its not of on or out she
so that the their them there they this to up was what when where which while who will with
"""
STOP_WORDS: list[str] = list(STOP_WORDS_TEXT.split())
"""Words too common to tell the texts apart."""

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


class WordCount(msgspec.Struct, frozen=True):
    """How often a word occurs across all texts."""

    word: str
    count: int


def text_names(directory: Path = TEXTS) -> list[str]:
    """The ``.txt`` files of ``directory``, by name, sorted (runs at submission)."""
    return sorted(p.name for p in directory.glob("*.txt"))


@elf
class Reader:
    """Reads texts from one directory."""

    def __init__(self, directory: str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else TEXTS

    @task
    def read(self, name: str) -> str:
        """The text of the file ``name`` in this reader's directory."""
        if Path(name).name != name:
            raise ValueError(f"a text is named by its file name alone, not {name!r}")
        return (self.directory / name).read_text(encoding="utf-8")


@elf
class Counter:
    """Counts words: lower-cased runs of letters (apostrophes inside a word are kept)."""

    def __init__(self, stop_words: list[str] | None = None) -> None:
        self.stop_words = frozenset(stop_words or ())

    @task
    def count(self, text: str) -> dict[str, int]:
        """How often each word of ``text`` occurs, stop words left out."""
        counts: dict[str, int] = {}
        for word in WORD.findall(text.lower()):
            if word not in self.stop_words:
                counts[word] = counts.get(word, 0) + 1
        return counts


@elf
class Merger:
    """Adds word counts together."""

    @task
    def merge(self, counts: list[dict[str, int]]) -> dict[str, int]:
        """The sum of ``counts``, word by word."""
        total: dict[str, int] = {}
        for part in counts:
            for word, n in part.items():
                total[word] = total.get(word, 0) + n
        return total


@elf
class Reporter:
    """Ranks words by frequency."""

    @task
    def top(self, counts: dict[str, int], n: int) -> list[WordCount]:
        """The ``n`` most frequent words, most frequent first, ties in alphabetical order."""
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [WordCount(word, count) for word, count in ranked[:n]]


reader = named(Reader, "reader")
counter = named(Counter, "counter", stop_words=STOP_WORDS)
merger = named(Merger, "merger")
reporter = named(Reporter, "reporter")


@pipeline
def wordstats(top: int = 10) -> list[WordCount]:
    """The ``top`` most frequent words over every text in ``texts/``."""
    counts: list[dict[str, int]] = []
    for name in text_names():
        counts.append(counter.count(reader.read(name)))
    return reporter.top(merger.merge(counts), top)
