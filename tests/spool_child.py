"""A child process for tests/test_spool.py: appends to (and acks on) a spool until it is killed.

Every step is announced on stdout before it starts and reported after it returns, so the parent
knows, after a SIGKILL at any point, which records were written (``A``), which may be half
written (``a`` without ``A``), which acks were done (``K``) and which may be (``k`` without ``K``)::

    ready <recovered_through>
    a <gen> <i>            about to append record i of generation gen
    A <gen> <i> <id> <reason>   append() returned (id None and a reason when not written)
    k <id>                 about to ack
    K <id>                 ack() returned
    done <stats as JSON>   the loop ended; then it waits on stdin to be killed (or closes on EOF)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import resource
import signal
import sys

from prometheus_rw_bridge._delivery.spool import Spool


def body_for(gen: int, index: int) -> bytes:
    """The deterministic body of record ``index`` of generation ``gen``: mostly small, some 1 MiB."""
    rnd = random.Random(gen * 1_000_003 + index)
    roll = rnd.random()
    size = rnd.randrange(1 << 20, 3 << 19) if roll < 0.05 else rnd.randrange(0, 48 * 1024)
    return f"{gen}:{index}:".encode() + rnd.randbytes(size)


def metadata_for(gen: int, index: int) -> dict[str, object]:
    """The metadata record ``index`` of generation ``gen`` is appended with."""
    return {
        "protocol": "2.0" if index % 2 else "1.0",
        "samples": index % 97 + 1,
        "seq": index,
        "timestamp_ms": gen * 1_000_000 + index,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--gen", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ack-probability", type=float, default=0.0)
    parser.add_argument("--max-bytes", type=int, default=1 << 30)
    parser.add_argument("--segment-bytes", type=int, default=256 * 1024)
    parser.add_argument("--file-size-limit", type=int, default=0, help="RLIMIT_FSIZE: a disk that fills up")
    args = parser.parse_args()
    if args.file_size_limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes then fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (args.file_size_limit, args.file_size_limit))

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    spool = Spool(
        args.directory, max_bytes=args.max_bytes, segment_bytes=args.segment_bytes, fsync_interval=None
    )
    say(f"ready {spool.recovered_through}")
    rnd = random.Random(args.seed)
    unacked: list[int] = []
    for index in range(args.count):
        say(f"a {args.gen} {index}")
        result = spool.append(body_for(args.gen, index), **metadata_for(args.gen, index))  # type: ignore[arg-type]
        say(f"A {args.gen} {index} {result.record_id} {result.reason}")
        if result.record_id is not None:
            unacked.append(result.record_id)
        if unacked and rnd.random() < args.ack_probability:
            record_id = unacked.pop(rnd.randrange(len(unacked)))
            say(f"k {record_id}")
            spool.ack(record_id)
            say(f"K {record_id}")
    say(f"done {json.dumps(dataclasses.asdict(spool.stats()))}")
    sys.stdin.read()
    spool.close()


if __name__ == "__main__":
    main()
