"""The disk spool: crashes of real processes, torn and corrupt files, the bound, acks, locks, fork.

Crash tests run ``tests/spool_child.py`` in a child process and SIGKILL it after a random number
of its output lines, i.e. at a random point of its append/ack loop (some kills land inside a
``writev`` of a 1 MiB record).  The child announces each step before it starts and reports it
when it returned, so the parent knows exactly what must be in the spool afterwards and which
single append or ack may or may not have happened.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

import pytest
from clocks import FakeClock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spool_child import body_for, metadata_for

from prometheus_rw_bridge._delivery import spool as spool_module
from prometheus_rw_bridge._delivery.spool import (
    ACK_BYTES,
    HEADER_BYTES,
    Spool,
    SpoolRecord,
    endpoint_directory,
)
from prometheus_rw_bridge._delivery.spool_format import MAGIC
from prometheus_rw_bridge._exceptions import ConfigurationError, RemoteWriteError, SpoolLockedError

CHILD = Path(__file__).with_name("spool_child.py")


# -- helpers -----------------------------------------------------------------------------------


@dataclass
class ChildRun:
    """What a child process reported before it died."""

    recovered_through: int = -1
    written: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> (gen, index)
    failed: dict[tuple[int, int], str] = field(default_factory=dict)  # (gen, index) -> reason
    pending_append: tuple[int, int] | None = None
    acked: set[int] = field(default_factory=set)
    pending_ack: int | None = None
    stats: dict[str, int] | None = None
    stderr: str = ""


def run_child(directory: Path, *, kill_after_lines: int | None, **options: Any) -> ChildRun:
    """Run the child; SIGKILL it after ``kill_after_lines`` lines (None: once it is done)."""
    command = [sys.executable, str(CHILD), str(directory)]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stderr is not None
    lines: list[str] = []
    try:
        while kill_after_lines is None or len(lines) < kill_after_lines:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("done"):
                break
        process.send_signal(signal.SIGKILL)
        lines += process.stdout.read().splitlines(keepends=True)  # what it printed before dying
    finally:
        process.kill()
        process.wait()
    run = ChildRun(stderr=process.stderr.read())
    process.stdout.close()
    process.stderr.close()
    for line in lines:
        word, *rest = line.split(" ", 1)
        args = rest[0].split() if rest else []
        if word == "ready":
            run.recovered_through = int(args[0])
        elif word == "a":
            run.pending_append = (int(args[0]), int(args[1]))
        elif word == "A":
            gen, index = int(args[0]), int(args[1])
            if args[2] == "None":
                run.failed[(gen, index)] = args[3]
            else:
                run.written[int(args[2])] = (gen, index)
            run.pending_append = None
        elif word == "k":
            run.pending_ack = int(args[0])
        elif word == "K":
            run.acked.add(int(args[0]))
            run.pending_ack = None
        elif word == "done":
            run.stats = json.loads(rest[0])
    assert run.recovered_through >= 0, f"the child did not start: {run.stderr}"
    assert "Traceback" not in run.stderr, run.stderr
    return run


def identity(record: SpoolRecord) -> tuple[int, int]:
    """Check a replayed record against what the child appended; return its (gen, index)."""
    gen, index = (int(part) for part in record.body.split(b":", 2)[:2])
    assert record.body == body_for(gen, index)
    meta = metadata_for(gen, index)
    assert (record.protocol, record.samples, record.seq, record.timestamp_ms) == (
        meta["protocol"],
        meta["samples"],
        meta["seq"],
        meta["timestamp_ms"],
    )
    return gen, index


@dataclass
class Ledger:
    """What must be in the spool across generations of children, and what may be."""

    present: dict[int, tuple[int, int]] = field(default_factory=dict)
    maybe_acked: int | None = None
    maybe_appended: tuple[int, int] | None = None

    def absorb(self, run: ChildRun) -> None:
        self.present.update(run.written)
        for record_id in run.acked:
            del self.present[record_id]
        self.maybe_acked = run.pending_ack
        if run.pending_ack is not None:
            self.present.pop(run.pending_ack)
        self.maybe_appended = run.pending_append

    def verify(self, directory: Path, **options: Any) -> spool_module.SpoolStats:
        """Reopen the spool: every written record exactly once, in order; at most the pending one more."""
        with Spool(directory, **options) as spool:
            records = list(spool.records(through=spool.recovered_through))
            stats = spool.stats()
        ids = [record.record_id for record in records]
        assert ids == sorted(set(ids)), "records replay once each, in order"
        found: dict[int, tuple[int, int]] = {}
        extra = []
        for record in records:
            found[record.record_id] = identity(record)
            if record.record_id in self.present:
                assert found[record.record_id] == self.present[record.record_id]
            elif record.record_id != self.maybe_acked:
                extra.append(found[record.record_id])
        assert extra in ([], [self.maybe_appended]), f"unexpected records {extra}"
        missing = set(self.present) - set(found)
        assert not missing, f"records written before the kill are missing: {sorted(missing)}"
        assert stats.records == len(records)
        self.present, self.maybe_acked, self.maybe_appended = found, None, None
        return stats


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def fill(spool: Spool, count: int, *, size: int = 100, start: int = 0) -> list[int]:
    """Append ``count`` small records; return their ids."""
    ids = []
    for index in range(start, start + count):
        result = spool.append(
            index.to_bytes(4, "little") * (size // 4),
            protocol="1.0",
            samples=index % 7 + 1,
            seq=index,
            timestamp_ms=index,
        )
        assert result.record_id is not None, result
        ids.append(result.record_id)
    return ids


def seq_of(spool: Spool, **kwargs: Any) -> list[int]:
    return [record.seq for record in spool.records(**kwargs)]


# -- real processes killed at random points ------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("ack_probability", [0.0, 0.6], ids=["no-acks", "out-of-order-acks"])
def test_sigkill_at_random_points_keeps_every_written_record_once_in_order(
    tmp_path: Path, seed: int, ack_probability: float
) -> None:
    rnd = random.Random(seed)
    ledger = Ledger()
    for gen in range(3):  # each generation recovers what the previous one left, torn tail and all
        count = rnd.randrange(20, 100)
        run = run_child(
            tmp_path,
            kill_after_lines=rnd.randrange(2, 2 * count),
            gen=gen,
            count=count,
            seed=seed * 10 + gen,
            ack_probability=ack_probability,
        )
        ledger.absorb(run)
        stats = ledger.verify(tmp_path)
        assert stats.corrupt_regions == 0 and stats.corrupt_records == 0, "a kill only tears the tail"
        assert stats.truncated_tails <= 1


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param("partial-record", id="partial-record"),
        pytest.param("header-only", id="header-only"),
        pytest.param("garbage", id="garbage"),
    ],
)
def test_torn_tail_appended_to_newest_segment_is_truncated_and_counted(tmp_path: Path, tail: str) -> None:
    ledger = Ledger()
    ledger.absorb(run_child(tmp_path, kill_after_lines=None, gen=0, count=30))
    newest = segment_files(tmp_path)[-1]
    data = newest.read_bytes()
    length = int.from_bytes(data[8:12], "little")
    record = data[: HEADER_BYTES + length]  # the segment's first record, whole
    rnd = random.Random(tail)
    if tail == "partial-record":
        torn = record[: rnd.randrange(1, len(record))]
    elif tail == "header-only":
        torn = record[:HEADER_BYTES]
    else:
        torn = rnd.randbytes(333)
    with newest.open("ab") as file:
        file.write(torn)
    stats = ledger.verify(tmp_path)
    assert (stats.truncated_tails, stats.truncated_bytes) == (1, len(torn))
    assert newest.stat().st_size == len(data), "the torn tail is cut off on disk"
    ledger.absorb(run_child(tmp_path, kill_after_lines=None, gen=1, count=10))
    assert ledger.verify(tmp_path).truncated_tails == 0


def test_a_full_disk_fails_appends_without_tearing_records(tmp_path: Path) -> None:
    run = run_child(tmp_path, kill_after_lines=None, count=40, file_size_limit=300_000, segment_bytes=1 << 30)
    assert run.failed and set(run.failed.values()) == {"write_error"}
    assert run.stats is not None and run.stats["io_errors"] == len(run.failed)
    ledger = Ledger()
    ledger.absorb(run)
    stats = ledger.verify(tmp_path)
    assert stats.truncated_tails == 0, "a failed write is truncated back at once"


# -- damage found on open ----------------------------------------------------------------------


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    hits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=6)
)
def test_random_byte_corruption_loses_only_the_damaged_records(
    tmp_path_factory: pytest.TempPathFactory, hits: list[tuple[float, int]]
) -> None:
    directory = tmp_path_factory.mktemp("corrupt")
    with Spool(directory, segment_bytes=4000) as spool:
        for index in range(60):
            spool.append(
                bytes([index]) * (index * 37 % 300), protocol="1.0", samples=1, seq=index, timestamp_ms=0
            )
    # Where each record sits: (file, start, end, seq).
    layout = []
    for path in segment_files(directory):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            end = pos + HEADER_BYTES + int.from_bytes(data[pos + 8 : pos + 12], "little")
            layout.append((path, pos, end, int.from_bytes(data[pos + 24 : pos + 32], "little")))
            pos = end
    total = sum(end - start for _, start, end, _ in layout)
    damaged = set()
    for target, xor in {int(where * total): xor for where, xor in hits}.items():  # two flips would undo
        for path, start, end, seq in layout:
            if target < end - start:
                with path.open("r+b") as file:
                    file.seek(start + target)
                    byte = file.read(1)[0]
                    file.seek(start + target)
                    file.write(bytes([byte ^ xor]))
                damaged.add((seq, end - start))
                break
            target -= end - start
    with Spool(directory) as spool:
        seqs = seq_of(spool)
        stats = spool.stats()
    assert seqs == sorted(set(range(60)) - {seq for seq, _ in damaged})
    assert stats.corrupt_bytes + stats.truncated_bytes == sum(size for _, size in damaged)
    assert stats.corrupt_regions + stats.truncated_tails >= 1


def test_a_corrupt_ack_log_replays_acked_records_again_never_loses_unacked_ones(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        ids = fill(spool, 20)
        for record_id in ids[::2]:
            spool.ack(record_id)
    acks = tmp_path / "acks"
    data = bytearray(acks.read_bytes())
    assert len(data) == (1 + 10) * ACK_BYTES  # the watermark, then the acks
    data[4 * ACK_BYTES + 2] ^= 0x40  # the fourth ack: the record of index 6
    acks.write_bytes(bytes(data[:-5]))  # and a torn last entry: the record of index 18
    with Spool(tmp_path) as spool:
        assert seq_of(spool) == sorted([*range(1, 20, 2), 6, 18])


def test_corruption_is_logged_rate_limited(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Spool(tmp_path) as spool:
        fill(spool, 10)
    path = segment_files(tmp_path)[0]
    data = bytearray(path.read_bytes())
    size = HEADER_BYTES + 100
    for index in (1, 3, 5):  # three separate damaged records
        data[index * size + HEADER_BYTES] ^= 1
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger=spool_module.__name__), Spool(tmp_path) as spool:
        assert spool.stats().corrupt_regions == 3
        assert seq_of(spool) == [0, 2, 4, 6, 7, 8, 9]
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1 and "corrupt bytes" in messages[0] and str(tmp_path) in messages[0]


def test_a_record_damaged_after_open_is_skipped_when_read(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        fill(spool, 3)
        path = segment_files(tmp_path)[0]
        with path.open("r+b") as file:  # bit rot while the spool is open
            file.seek(HEADER_BYTES + 100 + HEADER_BYTES + 5)
            file.write(b"\xff")
        assert seq_of(spool) == [0, 2]
        assert spool.stats().corrupt_records == 1
        assert seq_of(spool) == [0, 2], "and forgotten"


# -- bound, acks, segments ---------------------------------------------------------------------


def test_bound_drops_the_oldest_whole_records_and_counts_them(tmp_path: Path) -> None:
    max_bytes = 20_000
    live: dict[int, int] = {}  # id -> samples
    dropped_samples = dropped_records = 0
    with Spool(tmp_path, max_bytes=max_bytes, segment_bytes=2_000) as spool:
        for index in range(300):
            result = spool.append(b"x" * 150, protocol="1.0", samples=index, seq=index, timestamp_ms=index)
            assert result.record_id is not None
            dropped_ids = [d.record_id for d in result.dropped]
            assert dropped_ids == sorted(live)[: len(dropped_ids)], "the oldest go first"
            for dropped in result.dropped:
                assert live.pop(dropped.record_id) == dropped.samples
            dropped_records += len(result.dropped)
            dropped_samples += result.dropped_samples
            live[result.record_id] = index
            assert sum(path.stat().st_size for path in segment_files(tmp_path)) <= max_bytes
        stats = spool.stats()
        assert (stats.dropped_records, stats.dropped_samples) == (dropped_records, dropped_samples)
        assert dropped_records > 0 and stats.records == len(live)
        assert max_bytes - stats.bytes < 2_000 + HEADER_BYTES + 150, "drops free about one segment"
    with Spool(tmp_path, max_bytes=max_bytes) as spool:
        assert [r.record_id for r in spool.records()] == sorted(live)


def test_a_record_larger_than_the_bound_is_refused_not_spooled(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1024) as spool:
        kept = fill(spool, 3)
        result = spool.append(b"y" * 1024, protocol="2.0", samples=5, seq=9, timestamp_ms=9)
        assert (result.record_id, result.reason, result.dropped) == (None, "too_large", ())
        assert spool.stats().rejected_too_large == 1
        assert [r.record_id for r in spool.records()] == kept


def test_out_of_order_acks_replay_only_unacked_and_delete_acked_segments(tmp_path: Path) -> None:
    rnd = random.Random(5)
    with Spool(tmp_path, segment_bytes=1_000) as spool:
        ids = fill(spool, 100)
        assert len(segment_files(tmp_path)) > 10
        acked = rnd.sample(ids, 70) + ids[:20]  # the first two segments acked whole
        rnd.shuffle(acked)
        for record_id in acked:
            spool.ack(record_id)
        assert not spool.ack(acked[0]), "a second ack is a no-op"
        assert not spool.ack(10**9), "so is an unknown id"
        unacked = [record_id for record_id in ids if record_id not in set(acked)]
        assert [r.record_id for r in spool.records()] == unacked
        files_before_close = segment_files(tmp_path)
    with Spool(tmp_path) as spool:
        assert [r.record_id for r in spool.records()] == unacked
        assert spool.stats().records == len(unacked)
    survivors = segment_files(tmp_path)
    assert survivors == files_before_close, "fully acked segments are gone at once, not at reopen"
    per_segment = 1_000 // (HEADER_BYTES + 100)
    holding = {(record_id - 1) // per_segment for record_id in [*unacked, ids[-1]]}  # and the active one
    assert [int(path.stem) for path in survivors] == [s * per_segment + 1 for s in sorted(holding)]


def test_the_ack_log_stays_small_when_one_old_record_pins_its_segment(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=1_000) as spool:
        pinned = fill(spool, 1)[0]
        for round_ in range(60):
            for record_id in fill(spool, 200, size=4, start=round_ * 200):
                spool.ack(record_id)
        assert (tmp_path / "acks").stat().st_size < 2 * 4096 * ACK_BYTES
        assert [r.record_id for r in spool.records()] == [pinned]
    with Spool(tmp_path) as spool:
        assert [r.record_id for r in spool.records()] == [pinned]


def test_records_through_is_the_replay_and_sees_acks_during_iteration(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        fill(spool, 5)
    with Spool(tmp_path) as spool:
        assert spool.recovered_through == 5
        fill(spool, 2, start=5)
        replay = spool.records(through=spool.recovered_through)
        first = next(replay)
        spool.ack(3)  # acked by another thread while the replay runs
        assert [first.seq, *(r.seq for r in replay)] == [0, 1, 3, 4]  # not seq 2 (id 3), nor 5, 6
        assert seq_of(spool, after=5) == [5, 6]  # ids 6 and 7


def test_a_closed_spool_does_nothing_and_says_so(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    record_id = fill(spool, 1)[0]
    spool.close()
    spool.close()  # idempotent
    assert spool.append(b"x", protocol="1.0", samples=1, seq=1, timestamp_ms=1).reason == "closed"
    assert not spool.ack(record_id)
    assert list(spool.records()) == []
    spool.sync()
    with Spool(tmp_path) as reopened:
        assert [r.record_id for r in reopened.records()] == [record_id]


def test_ids_keep_growing_across_reopens(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=500) as spool:
        ids = fill(spool, 10)
        for record_id in ids[:-1]:
            spool.ack(record_id)
    with Spool(tmp_path) as spool:
        assert fill(spool, 1, start=10) == [ids[-1] + 1]
        assert seq_of(spool) == [9, 10]


# -- model-based: random append/ack/reopen sequences ------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 700), st.integers(0, 5000)),
        st.tuples(st.just("ack"), st.integers(0, 10**6), st.booleans()),
        st.tuples(st.just("reopen"), st.just(0), st.just(0)),
        st.tuples(st.just("sync"), st.just(0), st.just(0)),
    ),
    max_size=60,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=operations,
    max_bytes=st.sampled_from([1_500, 6_000, 1 << 20]),
    segment_bytes=st.sampled_from([300, 2_000, None]),
)
def test_spool_matches_a_model_over_random_operations(
    tmp_path_factory: pytest.TempPathFactory,
    ops: list[tuple[str, int, int]],
    max_bytes: int,
    segment_bytes: int | None,
) -> None:
    directory = tmp_path_factory.mktemp("model")
    model: dict[int, tuple[bytes, int, str]] = {}  # live records: id -> (body, samples, protocol)
    gone: list[int] = []

    def reopen() -> Spool:
        return Spool(directory, max_bytes=max_bytes, segment_bytes=segment_bytes, fsync_interval=0)

    def check(spool: Spool) -> None:
        replay = list(spool.records())
        assert [(r.record_id, r.body, r.samples, r.protocol) for r in replay] == [
            (record_id, *model[record_id]) for record_id in sorted(model)
        ]
        stats = spool.stats()
        assert (stats.records, stats.samples) == (len(model), sum(s for _, s, _ in model.values()))
        assert stats.bytes == sum(path.stat().st_size for path in segment_files(directory)) <= max_bytes

    spool = reopen()
    try:
        for op, a, b in ops:
            if op == "append":
                body = bytes([a % 251]) * a
                protocol = "2.0" if b % 2 else "1.0"
                result = spool.append(body, protocol=protocol, samples=b, seq=a, timestamp_ms=b)
                if HEADER_BYTES + a > max_bytes:
                    assert (result.record_id, result.reason) == (None, "too_large")
                    continue
                assert result.record_id is not None and result.record_id > max([*model, *gone], default=0)
                dropped = [d.record_id for d in result.dropped]
                assert dropped == sorted(model)[: len(dropped)]
                for d in result.dropped:
                    assert model.pop(d.record_id)[1] == d.samples
                gone += dropped
                model[result.record_id] = (body, b, protocol)
            elif op == "ack":
                if b and model:  # a live record, any of them: acks come out of order
                    record_id = sorted(model)[a % len(model)]
                else:  # acked or dropped before, or never existed
                    record_id = gone[a % len(gone)] if gone else a + 10**7
                assert spool.ack(record_id) == (record_id in model)
                if model.pop(record_id, None) is not None:
                    gone.append(record_id)
            elif op == "sync":
                spool.sync()
            else:
                spool.close()
                spool = reopen()
                assert spool.recovered_through >= max(model, default=0)
            check(spool)
        spool.close()
        spool = reopen()
        check(spool)
    finally:
        spool.close()


# -- threads -----------------------------------------------------------------------------------


def test_collector_appends_while_sender_threads_ack_out_of_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=20_000, fsync_interval=0)
    answered: Queue[int | None] = Queue()
    kept: list[int] = []
    kept_lock = threading.Lock()
    errors: list[BaseException] = []

    def sender(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            while (record_id := answered.get()) is not None:
                if rnd.random() < 0.1:
                    with kept_lock:
                        kept.append(record_id)  # never answered: must survive
                else:
                    assert spool.ack(record_id)
        except BaseException as exc:
            errors.append(exc)

    senders = [threading.Thread(target=sender, args=(seed,)) for seed in range(4)]
    for thread in senders:
        thread.start()
    for index in range(3000):
        result = spool.append(
            os.urandom(index % 500), protocol="1.0", samples=1, seq=index, timestamp_ms=index
        )
        assert result.record_id is not None
        answered.put(result.record_id)
        if index % 50 == 0:
            spool.sync()
    for _ in senders:
        answered.put(None)
    for thread in senders:
        thread.join()
    assert not errors
    spool.close()
    with Spool(tmp_path) as reopened:
        assert [r.record_id for r in reopened.records()] == sorted(kept)


# -- one owner per directory, fork -------------------------------------------------------------


def test_a_second_process_gets_a_clear_error_naming_the_directory(tmp_path: Path) -> None:
    directory = tmp_path / "spool-of-endpoint"
    owner = subprocess.Popen(
        [sys.executable, str(CHILD), str(directory), "--count", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None and owner.stdin is not None
    try:
        assert owner.stdout.readline().startswith("ready")
        with pytest.raises(SpoolLockedError) as caught:
            Spool(directory)
        assert isinstance(caught.value, RemoteWriteError)
        assert caught.value.directory == str(directory) and caught.value.pid == owner.pid
        assert str(directory) in str(caught.value) and f"pid {owner.pid}" in str(caught.value)
    finally:
        owner.kill()
        owner.wait()
        owner.stdout.close()
        owner.stdin.close()
    with Spool(directory), pytest.raises(SpoolLockedError):  # a killed owner's lock dies with it
        Spool(directory)  # but a second spool in the same process is refused


def test_a_forked_child_does_not_hold_or_use_the_parents_lock(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    fill(spool, 2)
    to_parent_r, to_parent_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        code = 1
        try:
            os.close(to_parent_r)
            os.close(to_child_w)
            report = [spool.append(b"z", protocol="1.0", samples=1, seq=0, timestamp_ms=0).reason]
            report.append(str(spool.ack(1)))
            try:
                Spool(tmp_path).close()
                report.append("opened")
            except SpoolLockedError:
                report.append("locked")
            os.write(to_parent_w, (" ".join(report) + "\n").encode())
            os.read(to_child_r, 1)  # wait while the parent closes and reopens
            code = 0
        finally:
            os._exit(code)
    os.close(to_parent_w)
    os.close(to_child_r)
    try:
        assert os.read(to_parent_r, 100).decode().split() == ["closed", "False", "locked"]
        spool.close()
        # The child is alive and inherited the lock file's descriptor: had it kept it, the
        # flock would survive the parent's close and this reopen would fail.
        with Spool(tmp_path) as reopened:
            assert seq_of(reopened) == [0, 1], "the child wrote and acked nothing"
    finally:
        os.write(to_child_w, b"x")
        os.close(to_child_w)
        os.close(to_parent_r)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# -- fsync policy, platform, names -------------------------------------------------------------


def test_fsync_at_most_every_interval_and_on_close(tmp_path: Path) -> None:
    clock = FakeClock(100.0)
    spool = Spool(tmp_path / "a", fsync_interval=1.0, clock=clock)
    fill(spool, 1)
    spool.sync()
    first = spool.stats().fsyncs
    assert first == 2, "the new segment and its directory"
    fill(spool, 1, start=1)
    clock.now += 0.5
    spool.sync()
    assert spool.stats().fsyncs == first, "deferred: the previous fsync is younger than 1 s"
    clock.now += 0.5
    spool.sync()
    assert spool.stats().fsyncs == first + 1
    spool.sync()
    assert spool.stats().fsyncs == first + 1, "nothing written since"
    spool.close()

    never = Spool(tmp_path / "b", fsync_interval=None, clock=clock)
    fill(never, 3)
    never.sync()
    assert never.stats().fsyncs == 0
    never.close()


def test_refused_on_platforms_without_flock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "SUPPORTED", False)  # what Windows has: no fcntl, no writev
    with pytest.raises(ConfigurationError, match="spool_dir is not supported on this platform"):
        Spool(tmp_path)
    assert not (tmp_path / "lock").exists()


@pytest.mark.parametrize("kwargs", [{"max_bytes": 10}, {"segment_bytes": 0}, {"fsync_interval": -1}])
def test_bad_bounds_fail_fast(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(kwargs))):
        Spool(tmp_path, **kwargs)


def test_endpoint_directory_is_stable_safe_and_distinct(tmp_path: Path) -> None:
    plain = endpoint_directory(tmp_path, "https://mimir.example:9009/api/v1/push?api_key=s3cr3t")
    rotated = endpoint_directory(tmp_path, "https://mimir.example:9009/api/v1/push?api_key=other")
    with_user = endpoint_directory(tmp_path, "https://user:pw@mimir.example:9009/api/v1/push?api_key=x")
    assert plain == rotated == with_user, "credentials do not move the spool"
    assert plain.parent == tmp_path and plain.name.startswith("mimir.example_9009-")
    assert "s3cr3t" not in plain.name
    assert endpoint_directory(
        tmp_path, "https://mimir.example:9009/api/v1/push", "team-a"
    ) != endpoint_directory(tmp_path, "https://mimir.example:9009/api/v1/push", "team-b")


def test_the_record_format_is_as_documented(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.append(b"body", protocol="2.0", samples=7, seq=3, timestamp_ms=-5)
    data = segment_files(tmp_path)[0].read_bytes()
    assert len(data) == HEADER_BYTES + 4 == 48
    assert data[:4] == MAGIC and data[-4:] == b"body"
    assert int.from_bytes(data[8:12], "little") == 4  # body length
    assert int.from_bytes(data[12:16], "little") == 7  # samples
    assert int.from_bytes(data[16:24], "little") == 1  # record id
    assert int.from_bytes(data[24:32], "little") == 3  # seq
    assert int.from_bytes(data[32:40], "little", signed=True) == -5  # timestamp ms
    assert data[40] == 2  # protocol 2.0
