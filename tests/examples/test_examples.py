"""Every example, end to end: its elves as plain classes, and its pipelines run in this process.

Each example module is imported from its file (as ``elfc run examples/x/pipeline.py:name``
would), once per test session, under a name of its own so that the three ``pipeline.py`` files
do not collide. Expected values are recomputed here, independently of the pipelines: the elves
are called directly on real instances built like the example's handles, and word counts are
counted again with ``collections.Counter``.
"""

from __future__ import annotations

import collections
import functools
import importlib.util
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from elfc import RunFailed, connect
from elfc.errors import HandleMisuse
from tests.runtime.fixtures.harness import Processes, ThreadWorkers, sqlite_url

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@functools.cache
def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>/pipeline.py`` once, as the module ``elfc_examples_<name>``."""
    path = EXAMPLES / name / "pipeline.py"
    module_name = f"elfc_examples_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    # Registered before running it: msgspec resolves the module's annotations through sys.modules.
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hello() -> ModuleType:
    return load_example("hello")


@pytest.fixture(scope="module")
def animals() -> ModuleType:
    return load_example("animals")


@pytest.fixture(scope="module")
def wordstats() -> ModuleType:
    return load_example("wordstats")


# --- hello -------------------------------------------------------------------------------------


def test_hello_elves_are_plain_classes(
    hello: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert hello.Sender().message("elves") == "Hello, elves!"
    assert hello.Sender(greeting="Hi").message("you") == "Hi, you!"
    assert hello.Printer().show("a message") == "a message"
    assert capsys.readouterr().out == "a message\n"


def test_hello_task_on_a_handle_outside_a_pipeline_says_what_to_do(hello: ModuleType) -> None:
    with pytest.raises(HandleMisuse, match=r"Sender\(\.\.\.\)\.message"):
        hello.sender.message("elves")


def test_hello_runs_in_process(hello: ModuleType) -> None:
    assert hello.hello(name="elves") == "Hello, elves!"
    assert hello.hello() == "Hello, world!"


# --- animals -----------------------------------------------------------------------------------


def expected_measurements(animals: ModuleType, rounds: int) -> list[dict[str, Any]]:
    """What the example's ``animals`` handle (``Animals(seed=42)``) measures in ``rounds``."""
    source = animals.Animals(seed=42)
    return [dict(source.measure()) for _ in range(rounds)]


def test_animals_are_reproducible_and_plausible(animals: ModuleType) -> None:
    first = expected_measurements(animals, 20)
    assert first == expected_measurements(animals, 20)
    assert first != [dict(m) for m in (animals.Animals(seed=7).measure() for _ in range(20))]
    for m in first:
        (w_lo, w_hi), (h_lo, h_hi) = animals.SIZES[m["species"]]
        assert w_lo <= m["weight"] <= w_hi
        assert h_lo <= m["height"] <= h_hi
    only_cats = animals.Animals(seed=1, species=["cat"])
    assert {only_cats.measure()["species"] for _ in range(5)} == {"cat"}
    with pytest.raises(ValueError, match="unicorn"):
        animals.Animals(species=["unicorn"])


def test_storage_appends_to_its_json_file(animals: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "zoo.json"
    store = animals.Storage(path=str(path))
    cat = {"species": "cat", "weight": 4, "height": 25}
    dog = {"species": "dog", "weight": 30, "height": 60}
    assert store.save(cat) == 1
    assert store.save(dog) == 2
    assert json.loads(path.read_text(encoding="utf-8")) == [cat, dog]
    assert animals.Storage(path=str(path)).load() == [cat, dog]


def test_storage_default_path(
    animals: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELFC_EXAMPLE_DIR", str(tmp_path))
    assert animals.Storage().path == tmp_path / "animals.json"
    monkeypatch.delenv("ELFC_EXAMPLE_DIR")
    assert animals.Storage().path == Path(tempfile.gettempdir()) / "animals.json"


def test_stats(animals: ModuleType) -> None:
    values = [4, 1, 7, 4]
    assert animals.Stats("mean").compute(values) == 4.0
    assert animals.Stats("min").compute(values) == 1.0
    assert animals.Stats("max").compute(values) == 7.0
    with pytest.raises(ValueError, match="no values"):
        animals.Stats("mean").compute([])


def test_formatter_prints_and_returns_the_report(
    animals: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = {"mean": 2.5, "min": 1.0, "max": 4.0}
    report = animals.Formatter(title="Zoo").report(rounds=4, stored=9, weight=stats, height=stats)
    assert report.splitlines()[0] == "Zoo: 4 animals measured, 9 on file"
    assert report.splitlines()[2].split() == ["weight", "kg", "2.5", "1.0", "4.0"]
    assert report.splitlines()[3].split() == ["height", "cm", "2.5", "1.0", "4.0"]
    assert capsys.readouterr().out == report + "\n"


def test_census_runs_in_process(
    animals: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELFC_EXAMPLE_DIR", str(tmp_path))
    measured = expected_measurements(animals, 3)
    weights = [m["weight"] for m in measured]
    heights = [m["height"] for m in measured]

    report = animals.census(rounds=3)

    def stats(values: list[int]) -> dict[str, float]:
        return {k: animals.Stats(k).compute(values) for k in ("mean", "min", "max")}

    formatter = animals.Formatter()
    expected = formatter.report(rounds=3, stored=3, weight=stats(weights), height=stats(heights))
    assert report == expected
    # The storage elf wrote each measurement once, in the order they were measured.
    stored = json.loads((tmp_path / "animals.json").read_text(encoding="utf-8"))
    assert stored == measured


def test_census_task_failure_raises_run_failed(
    animals: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file where the storage directory should be: every save fails (after its retries).
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("", encoding="utf-8")
    monkeypatch.setenv("ELFC_EXAMPLE_DIR", str(blocked))

    with pytest.raises(RunFailed) as failed:
        animals.census(rounds=2)

    failures = failed.value.failures
    assert failures
    assert {f.task for f in failures} == {"save"}
    assert all("FileExistsError" in f.error_type for f in failures)
    assert all("mkdir" in f.traceback for f in failures)


# --- wordstats ---------------------------------------------------------------------------------


def words_of(text: str) -> list[str]:
    """Words as the example defines them, found without its regular expression."""
    found = []
    for raw in text.lower().split():
        word = "".join(ch for ch in raw if ch.isalpha() or ch == "'").strip("'")
        if word:
            found.append(word)
    return found


def expected_top(wordstats: ModuleType, n: int) -> list[tuple[str, int]]:
    total: collections.Counter[str] = collections.Counter()
    for path in sorted((EXAMPLES / "wordstats" / "texts").glob("*.txt")):
        total.update(words_of(path.read_text(encoding="utf-8")))
    for word in wordstats.STOP_WORDS:
        del total[word]
    return sorted(total.items(), key=lambda item: (-item[1], item[0]))[:n]


def test_wordstats_ships_its_texts(wordstats: ModuleType) -> None:
    names = wordstats.text_names()
    assert 3 <= len(names) <= 5
    assert names == sorted(names)
    for name in names:
        assert len(words_of(wordstats.Reader().read(name))) > 100


def test_reader_reads_only_its_directory(wordstats: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Some text.", encoding="utf-8")
    reader = wordstats.Reader(directory=str(tmp_path))
    assert reader.read("a.txt") == "Some text."
    with pytest.raises(ValueError, match="file name alone"):
        reader.read("../a.txt")


def test_counter_merger_reporter(wordstats: ModuleType) -> None:
    counter = wordstats.Counter(stop_words=["the"])
    counts = counter.count("The cat and the hat; the CAT's hat. The baker's o'clock cat!")
    assert counts == {"cat": 2, "and": 1, "hat": 2, "cat's": 1, "baker's": 1, "o'clock": 1}
    assert wordstats.Counter().count("The the") == {"the": 2}

    merged = wordstats.Merger().merge([{"a": 1, "b": 2}, {"b": 3, "c": 1}, {}])
    assert merged == {"a": 1, "b": 5, "c": 1}

    top = wordstats.Reporter().top({"b": 2, "a": 2, "c": 5, "d": 1}, 3)
    assert top == [
        wordstats.WordCount("c", 5),
        wordstats.WordCount("a", 2),
        wordstats.WordCount("b", 2),
    ]


def test_wordstats_runs_in_process(wordstats: ModuleType) -> None:
    top5 = wordstats.wordstats(top=5)
    assert [(w.word, w.count) for w in top5] == expected_top(wordstats, 5)
    assert all(isinstance(w, wordstats.WordCount) for w in top5)

    top10 = wordstats.wordstats()
    assert [(w.word, w.count) for w in top10] == expected_top(wordstats, 10)


# --- `elfc run` end to end ---------------------------------------------------------------------
# Subprocess tests: `elfc run examples/<x>/pipeline.py:<name>` (workers as processes), animals the
# Blumycelium way (`elfc submit` and one `elfc worker` per elf, in either order), and submission
# from this process to workers in threads; each on a mycelium in tmp_path. The in-process tests
# above stay independent of this section.


def expected_census(animals: ModuleType, rounds: int, stored: int) -> str:
    """The report of ``census(rounds)`` when the storage file then holds ``stored`` animals."""
    measured = expected_measurements(animals, rounds)

    def stats(key: str) -> dict[str, float]:
        values = [m[key] for m in measured]
        return {k: animals.Stats(k).compute(values) for k in ("mean", "min", "max")}

    report: str = animals.Formatter().report(
        rounds=rounds, stored=stored, weight=stats("weight"), height=stats("height")
    )
    return report


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    with Processes(tmp_path) as started:
        yield started


@pytest.mark.parametrize(
    ("target", "args"),
    [
        ("hello/pipeline.py:hello", ["-a", "name=elves"]),
        ("animals/pipeline.py:census", ["-a", "rounds=3"]),
        ("wordstats/pipeline.py:wordstats", ["-a", "top=5"]),
    ],
)
def test_elfc_run_runs_each_example_in_worker_processes(
    target: str,
    args: list[str],
    procs: Processes,
    tmp_path: Path,
    animals: ModuleType,
    wordstats: ModuleType,
) -> None:
    done = procs.call(
        "run", str(EXAMPLES / target), *args, "--mycelium", sqlite_url(tmp_path),
        env={"ELFC_EXAMPLE_DIR": str(tmp_path)},
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()  # the result alone: what elves print goes to stderr
    value = json.loads(line)
    if target.startswith("hello"):
        assert value == "Hello, elves!"
    elif target.startswith("animals"):
        assert value == expected_census(animals, 3, stored=3)
        # The formatter printed it in its worker; elfc run shows each line with its job.
        shown = [line for line in done.stderr.splitlines() if line.startswith("[formatter ")]
        assert [line.split("] ", 1)[1] for line in shown] == value.splitlines()
    else:
        assert [(w["word"], w["count"]) for w in value] == expected_top(wordstats, 5)
    assert procs.strays() == []


ANIMAL_ELVES = ["animals", "store", "mean", "minimum", "maximum", "formatter"]


@pytest.mark.parametrize("workers_first", [True, False], ids=["workers-first", "submit-first"])
def test_animals_the_blumycelium_way_submit_and_a_worker_per_elf(
    workers_first: bool, procs: Processes, tmp_path: Path, animals: ModuleType
) -> None:
    url = sqlite_url(tmp_path)
    env = {"ELFC_EXAMPLE_DIR": str(tmp_path)}
    path = EXAMPLES / "animals" / "pipeline.py"

    def start_workers(order: list[str]) -> None:
        for elf in order:
            procs.worker(path, elf, url, env=env)

    if workers_first:
        start_workers(ANIMAL_ELVES)
    submitted = procs.call("submit", f"{path}:census", "-a", "rounds=4", "--mycelium", url)
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.strip()
    if not workers_first:
        start_workers(ANIMAL_ELVES[::-1])

    mycelium = connect(url)
    try:
        assert mycelium.run(run_id).wait(timeout=60) == expected_census(animals, 4, stored=4)
    finally:
        mycelium.close()
    runs = procs.call("runs", "--json", "--mycelium", url)
    [run] = json.loads(runs.stdout)
    assert (run["id"], run["status"], run["total"]) == (run_id, "succeeded", 4 * 2 + 6 + 1)
    stored = json.loads((tmp_path / "animals.json").read_text(encoding="utf-8"))
    assert stored == expected_measurements(animals, 4)


def test_animals_submitted_in_process_to_workers_in_threads(
    animals: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite_url(tmp_path)
    monkeypatch.setenv("ELFC_MYCELIUM", url)  # census.submit uses the default mycelium
    monkeypatch.setenv("ELFC_EXAMPLE_DIR", str(tmp_path))
    mycelium = connect(url)
    try:
        with ThreadWorkers(url) as threads:
            for name in ANIMAL_ELVES:
                threads.start(getattr(animals, name))
            first = animals.census.submit(rounds=3)
            assert first.wait(timeout=30) == expected_census(animals, 3, stored=3)
            # Measurement n of the (long-lived) animals elf continues from where it was.
            second = mycelium.submit(animals.census, rounds=2)
            report = second.wait(timeout=30)
        assert report.splitlines()[0] == "Animal census: 2 animals measured, 5 on file"
        assert first.status() == second.status() == "succeeded"
        assert {r.id for r in mycelium.store.list_runs()} == {first.id, second.id}
    finally:
        mycelium.close()


# --- invoices: typed results (date, Decimal, Enum, dataclass) --------------------------------


@pytest.fixture(scope="module")
def invoices() -> ModuleType:
    return load_example("invoices")


def expected_reminders(module: ModuleType, terms_days: int = 30) -> list[str]:
    """The reminders computed by hand, with Python's own date and Decimal arithmetic."""
    today = module.Ledger().today()
    out = []
    for number in ("A-1", "A-2", "A-3"):
        inv = module.LEDGER[number]
        due = inv.issued + module.timedelta(days=terms_days)
        amount = inv.amount * module.Decimal("1.05")
        text = (
            f"invoice {number}: {amount:.2f} EUR ({inv.status.name.lower()}), "
            f"due {due.isoformat()}, {(today - due).days:+d} days past due"
        )
        out.append(f"to {inv.customer.title()}: {text}")
    return out


def test_invoices_in_process(invoices: ModuleType) -> None:
    assert invoices.reminders.check() == []
    assert invoices.reminders() == expected_reminders(invoices)
    assert invoices.reminders(terms_days=14) == expected_reminders(invoices, 14)
    # 19.90 * 1.05 = 20.895, rounded half-even as Decimal formats it (a float gives 20.89).
    assert invoices.reminders()[0].startswith("to Ada Lovelace: invoice A-1: 20.90 EUR (open)")


def test_invoices_on_workers(invoices: ModuleType, url: str, threads: ThreadWorkers) -> None:
    threads.start(invoices.ledger)
    threads.start(invoices.mailer)
    run = connect(url).submit(invoices.reminders, terms_days=45)
    assert run.wait(timeout=60) == expected_reminders(invoices, 45)


# --- etl: loops, branches and a poll on task results -------------------------------------------


@pytest.fixture(scope="module")
def etl() -> ModuleType:
    return load_example("etl")


def expected_etl(etl: ModuleType, day: str, max_dropped: float = 0.2) -> str:
    """``daily_sales(day)`` computed with the elves called directly, as plain Python."""
    source, cleaner, warehouse = etl.Source(), etl.Cleaner(), etl.Warehouse(polls_needed=2)
    files = source.files(day)
    if not files:
        return f"{day}: nothing to load"
    cleaned = []
    for f in files:
        try:
            lines = source.read(f)
        except ConnectionError:
            lines = source.read_backup(f)
        cleaned.append(cleaner.clean(f, lines))
    limit = [max_dropped * (c["rows"] + c["dropped"]) for c in cleaned]
    good = [c for c, cap in zip(cleaned, limit, strict=True) if c["dropped"] <= cap]
    bad = [c["file"] for c, cap in zip(cleaned, limit, strict=True) if c["dropped"] > cap]
    note = warehouse.quarantine(day, bad) if bad else "all files clean"
    cents = warehouse.load(day, good)
    export = warehouse.start_export(day, cents)
    return f"{day}: {cents / 100:.2f} loaded from {len(good)} file(s), {note}; {export} ready"


ETL_CASES = [("2026-12-01", 0.2), ("2026-12-02", 0.05), ("holiday", 0.2)]


@pytest.mark.parametrize(("day", "max_dropped"), ETL_CASES)
def test_etl_runs_in_process(etl: ModuleType, day: str, max_dropped: float) -> None:
    assert etl.daily_sales.check() == []
    got = etl.daily_sales(day, max_dropped=max_dropped)
    assert got == expected_etl(etl, day, max_dropped)


def test_etl_on_workers_with_replicas(etl: ModuleType, url: str, threads: ThreadWorkers) -> None:
    threads.start(etl.source)
    threads.start(etl.cleaner, threads=3)
    threads.start(etl.warehouse)
    mycelium = connect(url)
    for day, max_dropped in ETL_CASES:
        run = mycelium.submit(etl.daily_sales, day, max_dropped=max_dropped)
        assert run.wait(timeout=60) == expected_etl(etl, day, max_dropped)
    # The loop made one clean job per file, at run time; the polls one expansion each.
    files = etl.Source().files("2026-12-01")
    jobs = mycelium.store.list_jobs(mycelium.store.list_runs(3)[-1].id)
    assert sum(j.task == "clean" for j in jobs) == len(files)
    assert {j.status for j in jobs if j.task == "quarantine"} == {"not_taken"}
    # till-2's share is offline: its read failed, was handled, and its backup was read.
    assert [j.status for j in jobs if j.task == "read"].count("handled") == 1
    assert sum(j.task == "read_backup" for j in jobs) == 1


def test_elfc_run_runs_the_etl_with_replicas(
    procs: Processes, tmp_path: Path, etl: ModuleType
) -> None:
    done = procs.call(
        "run", str(EXAMPLES / "etl/pipeline.py:daily_sales"), "-a", "day=2026-12-01",
        "--replicas", "cleaner=3", "--mycelium", sqlite_url(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected_etl(etl, "2026-12-01")
    assert procs.strays() == []
