"""The smallest snappy block encoding of the benchmark's 1.0 body, against cramjam's.

Run from the repository root (about 90 s of CPU)::

    .venv/bin/python benchmarks/snappy_optimum.py [--samples 10k]

It prints bytes per sample for cramjam's ``compress_raw`` and for the exact optimum: the
shortest sequence of snappy elements (literals with 1-4 byte tags; copies of 2, 3 or 5 bytes,
at most 64 bytes each) that produces the body.  Every valid snappy stream is such a sequence,
so the optimum is a lower bound for any snappy encoder; the script also writes the stream out
and checks that cramjam decompresses it to the body, so the bound is reached.

Method: for l = 1..64, one pass with a dict of l-grams finds each position's latest earlier
occurrence (the smallest offset), which gives the exact longest match per offset class; a
dynamic program over positions then takes the cheapest element ending at each position
(sliding-window minima for literals, lazy heaps for copies).  See docs/performance.md.
"""

from __future__ import annotations

import argparse
import heapq
import sys
from array import array
from collections import deque

import cramjam
from workload import INSTANCE, JOB, TIMESTAMP_MS, build_registry, count_samples, parse_size

from prometheus_rw_bridge._protocol.encode import Encoder, collect

INF = 1 << 60


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def match_lengths(b: bytes):
    n = len(b)
    M3 = array("i", bytes(4 * n))
    M2 = array("i", bytes(4 * n))
    M5 = array("i", bytes(4 * n))
    O3 = array("i", bytes(4 * n))
    O2 = array("i", bytes(4 * n))
    O5 = array("i", bytes(4 * n))
    active = range(n)
    for length in range(1, 65):
        d: dict[bytes, int] = {}
        get = d.get
        repeated = bytearray(n)  # positions whose length-gram occurs >= 2 times
        lim = n - length
        for i in active:
            if i > lim:
                break
            k = b[i : i + length]
            j = get(k)
            d[k] = i
            if j is not None:
                off = i - j
                repeated[i] = 1
                repeated[j] = 1
                M5[i] = length
                O5[i] = off
                if off <= 65535:
                    M3[i] = length
                    O3[i] = off
                    if off <= 2047 and 4 <= length <= 11:
                        M2[i] = length
                        O2[i] = off
        active = [i for i in active if repeated[i]] if length < 64 else []
        if not active:
            break
    return M3, M2, M5, O3, O2, O5


class WindowMin:
    """Minimum of val[j] over j in [k-hi, k-lo] as k advances by one."""

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi
        self.q: deque = deque()  # (j, value), values increasing

    def query(self, k: int, val) -> tuple[int, int]:
        j = k - self.lo
        q = self.q
        if j >= 0:
            v = val[j]
            while q and q[-1][1] >= v:
                q.pop()
            q.append((j, v))
        while q and q[0][0] < k - self.hi:
            q.popleft()
        return q[0] if q else (-1, INF)


def optimum(b: bytes, M3, M2, M5):
    n = len(b)
    A = [INF] * (n + 1)
    D = [INF] * (n + 1)  # A[j] - j
    src = array("i", bytes(4 * (n + 1)))
    kind = bytearray(n + 1)  # 1 literal, 2/3/5 copy with that many bytes
    A[0] = 0
    D[0] = 0
    lit = [
        (WindowMin(1, 60), 1),
        (WindowMin(61, 256), 2),
        (WindowMin(257, 65536), 3),
        (WindowMin(65537, 1 << 24), 4),
    ]
    h3: list = []
    h5: list = []
    h2: list = []
    pend2: deque = deque()
    for k in range(0, n + 1):
        if k:
            best, bs, bk = INF, -1, 0
            for w, c in lit:
                j, v = w.query(k, D)
                if v + k + c < best:
                    best, bs, bk = v + k + c, j, 1
            while pend2 and pend2[0][0] <= k:
                _, item = pend2.popleft()
                heapq.heappush(h2, item)
            for h, c in ((h2, 2), (h3, 3), (h5, 5)):
                while h and h[0][1] < k:
                    heapq.heappop(h)
                if h and h[0][0] < best:
                    best, bs, bk = h[0][0], h[0][2], c
            A[k], src[k], kind[k] = best, bs, bk
            D[k] = best - k
        if k == n:
            break
        a = A[k]
        m3 = min(64, M3[k])
        m5 = min(64, M5[k])
        if m3:
            heapq.heappush(h3, (a + 3, k + m3, k))
        if m5 > m3:
            heapq.heappush(h5, (a + 5, k + m5, k))
        if M2[k] >= 4:
            pend2.append((k + 4, (a + 2, k + M2[k], k)))
    return A, src, kind


def literal(out: bytearray, data: bytes) -> int:
    L = len(data)
    if L <= 60:
        out.append((L - 1) << 2)
    else:
        nb = ((L - 1).bit_length() + 7) // 8
        out.append((59 + nb) << 2)
        out += (L - 1).to_bytes(nb, "little")
    out += data
    return L


def emit(b, A, src, kind, O3, O2, O5):
    n = len(b)
    elems = []
    k = n
    while k:
        j = src[k]
        elems.append((j, k, kind[k]))
        k = j
    elems.reverse()
    out = bytearray(varint(n))
    for j, k, t in elems:
        L = k - j
        if t == 1:
            literal(out, b[j:k])
        elif t == 2:
            off = O2[j]
            assert 4 <= L <= 11 and off < 2048
            out.append(1 | ((L - 4) << 2) | ((off >> 8) << 5))
            out.append(off & 0xFF)
        elif t == 3:
            off = O3[j]
            assert 1 <= L <= 64 and off < 65536
            out.append(2 | ((L - 1) << 2))
            out += off.to_bytes(2, "little")
        else:
            off = O5[j]
            out.append(3 | ((L - 1) << 2))
            out += off.to_bytes(4, "little")
    return bytes(out), elems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", default="10k", help="registry size (default %(default)s)")
    args = parser.parse_args(argv)
    registry = build_registry(parse_size(args.samples))
    samples = count_samples(registry)
    body = Encoder(job=JOB, instance=INSTANCE).encode(collect(registry), TIMESTAMP_MS).body(metadata=False)
    greedy = len(cramjam.snappy.compress_raw(body))
    m3, m2, m5, o3, o2, o5 = match_lengths(body)
    cost, src, kind = optimum(body, m3, m2, m5)
    stream, _ = emit(body, cost, src, kind, o3, o2, o5)
    assert bytes(cramjam.snappy.decompress_raw(stream)) == body, "the optimal stream does not round-trip"
    print(f"{samples:,} samples, {len(body):,} bytes uncompressed (series only, job and instance set)")
    print(f"cramjam compress_raw: {greedy:,} bytes = {greedy / samples:.2f} B/sample")
    print(
        f"optimal snappy parse: {len(stream):,} bytes = {len(stream) / samples:.2f} B/sample (decompresses)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
