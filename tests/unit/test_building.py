"""Building documents in worker processes (indexer.index.building): the same bytes, the same
failures, in the same order as building them in the loader's own process; and the cases that
must stay in that process."""

from __future__ import annotations

import gc
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import weakref
from datetime import UTC, datetime
from pathlib import Path

import orjson
from builders import make_call

from bench.corpus import BENCH_TRACKERS
from indexer.errors import TranscriptError
from indexer.index.building import (
    Builder,
    Built,
    RawTranscript,
    Tagger,
    can_build_in_workers,
    collected_after,
    raw_pool,
    settle_heap,
    worker_count,
)
from indexer.index.documents import call_document
from indexer.settings import PROJECT_ROOT, Settings
from indexer.trackers.model import Tracker
from indexer.trackers.tagging import tagger
from indexer.transcript import encode_call_file, parse_call

SAMPLES = PROJECT_ROOT / "samples" / "calls"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def bench_tagger() -> Tagger:
    return tagger([Tracker(**spec, created_at=NOW, updated_at=NOW) for spec in BENCH_TRACKERS])


def raw_lines() -> list[RawTranscript]:
    """The sample calls as JSON Lines, generated calls that the trackers tag, and bad lines."""
    lines = [
        json.dumps(json.loads(path.read_text("utf-8"))) for path in sorted(SAMPLES.glob("*.json"))
    ]
    lines += [
        make_call(
            f"gen-{i}", [("manager", f"call {i} со скидкой"), ("client", "that is too expensive")]
        ).model_dump_json()
        for i in range(6)
    ]
    wrong_role = json.loads(lines[0])
    wrong_role["utterances"][0]["role"] = "boss"
    lines.insert(3, "{oops")
    lines.insert(9, json.dumps(wrong_role))
    return [
        RawTranscript(f"calls.jsonl:{n}", line=line.encode()) for n, line in enumerate(lines, 1)
    ]


def test_workers_build_the_same_bytes_and_failures_in_order(tmp_path: Path) -> None:
    builder = Builder(Settings(store_dir=tmp_path), bench_tagger())
    raws = raw_lines()
    here = [builder.build_raw(raw) for raw in raws]
    batches = [raws[i : i + 4] for i in range(0, len(raws), 4)]

    assert can_build_in_workers(builder)
    with raw_pool(builder, workers=2) as pool:
        built = list(pool.build(batches))

    assert [batch for batch, _ in built] == batches
    assert [outcome for _, outcomes in built for outcome in outcomes] == here
    failures = [outcome for outcome in here if isinstance(outcome, str)]
    assert failures[0].startswith("calls.jsonl:4: (line): not valid JSON")
    assert failures[1].startswith("calls.jsonl:10: utterances.0.role:")
    assert len(failures) == 2
    tagged = [o for o in here if isinstance(o, Built) and o.call_id.startswith("gen-")]
    assert tagged
    assert all(orjson.loads(o.document)["trackers"] == ["discount", "pricing"] for o in tagged)


def test_a_built_call_is_its_document_and_its_store_file(tmp_path: Path) -> None:
    tag = bench_tagger()
    builder = Builder(Settings(store_dir=tmp_path), tag)
    for raw in raw_lines():
        outcome = builder.build_raw(raw)
        if isinstance(outcome, str):
            continue
        assert raw.line is not None
        call = parse_call(json.loads(raw.line), raw.source)
        assert orjson.loads(outcome.document) == call_document(call, tag(call))
        assert outcome.stored == encode_call_file(call, compressed=True)
        assert outcome.original is None  # no redaction policy: the store holds the original


def test_what_cannot_go_to_a_worker_is_built_in_the_loader(tmp_path: Path) -> None:
    bleep = Settings(redaction="bleep", redaction_audio_dir=tmp_path)
    assert not can_build_in_workers(Builder(Settings(), lambda call: []))
    assert not can_build_in_workers(Builder(bleep, tagger([])))
    assert can_build_in_workers(Builder(Settings(redaction="mask"), tagger([])))
    pickle.loads(pickle.dumps(bench_tagger()))


def test_a_settled_heap_is_frozen_and_still_frees_what_nothing_refers_to() -> None:
    class Held:
        pass

    held = Held()
    alive = weakref.ref(held)
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert alive() is held
        del held  # frozen, yet freed once nothing refers to it
        assert alive() is None
    finally:
        gc.unfreeze()  # the rest of the test run collects as usual


# A loader that builds in workers, then waits: it prints its workers' pids and is killed.
_KILLED_LOADER = """
import os, sys, time
from indexer.index.building import BuildPool

def pid_of(state, item):
    return os.getpid()

if __name__ == "__main__":
    with BuildPool(pid_of, None, 2) as pool:
        pids = set()
        for _, built in pool.build([[n] for n in range(40)]):
            pids.update(built)
        print(" ".join(map(str, sorted(pids))), flush=True)
        time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) is gone too.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


def test_build_workers_leave_when_their_loader_is_killed(tmp_path: Path) -> None:
    """A loader killed mid-load (SIGKILL, so no shutdown runs) leaves no build worker behind
    waiting for batches for ever."""
    script = tmp_path / "loader.py"
    script.write_text(_KILLED_LOADER)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    loader = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert loader.stdout is not None
    workers = [int(pid) for pid in loader.stdout.readline().split()]
    assert workers, "the loader built nothing in workers"
    assert all(_alive(pid) for pid in workers)
    loader.send_signal(signal.SIGKILL)
    loader.wait()
    deadline = time.monotonic() + 60
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"build workers {left} outlived their killed loader"


def test_a_call_is_built_with_the_collector_off_and_its_cycles_collected_after() -> None:
    class Node:
        pass

    assert gc.isenabled()
    with collected_after():
        assert not gc.isenabled()
        cycle = Node()
        cycle.self = cycle  # type: ignore[attr-defined]
        alive = weakref.ref(cycle)
        del cycle
        garbage = [[n] for n in range(50_000)]  # allocations that would trigger collections
        del garbage
        assert alive() is not None  # the cycle waits for the first collection after...
        with collected_after():  # nested: the outer one turns the collector back on
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.collect()
    assert alive() is None  # ...which frees it


def test_the_collector_is_back_on_after_a_failed_build_and_stays_off_if_it_was() -> None:
    try:
        with collected_after():
            raise TranscriptError("x.json", "(line)", "not valid JSON")
    except TranscriptError:
        pass
    assert gc.isenabled()
    gc.disable()
    try:
        with collected_after():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_worker_count_leaves_a_core_to_a_node_on_this_machine() -> None:
    local = ("http://127.0.0.1:9200", "http://localhost:9200", "http://[::1]:9200",
             "http://127.0.0.1:9200,http://127.0.0.2:9201")  # fmt: skip
    remote = ("http://10.0.0.5:9200", "https://search.example:9200",
              "http://127.0.0.1:9200,http://10.0.0.5:9200")  # fmt: skip
    for url in local:
        settings = Settings(es_url=url, load_workers=0)
        assert [worker_count(settings, cores) for cores in (1, 2, 8)] == [1, 1, 7], url
    for url in remote:
        settings = Settings(es_url=url, load_workers=0)
        assert [worker_count(settings, cores) for cores in (1, 2, 8)] == [1, 2, 8], url
    # Set by hand, the count is kept whatever the machine; 1 means the loader's own process.
    for url in local + remote:
        assert worker_count(Settings(es_url=url, load_workers=3), 8) == 3
        assert worker_count(Settings(es_url=url, load_workers=1), 8) == 0
