"""What one collection of the registry becomes: per endpoint, its requests, compressed, ready to queue.

:class:`CollectionMaker` runs on the collector thread.  It encodes the families in each protocol
some endpoint needs (1.0, 2.0, and 1.0 copies beside a 2.0 that is not yet confirmed), cuts and
compresses the requests once per protocol (at most ``max_samples_per_send`` series and, with
``max_bytes_per_send``, that many bytes each), and hands every endpoint a :class:`Collection` of
its own :class:`Part` objects: the bodies are shared, the delivery state is not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._protocol.batching import JoinBuffer, Request, RequestStream, compress_requests
from .._protocol.encode import EncodedCollection
from . import give_back as _memory

if TYPE_CHECKING:
    from .sender import EndpointSender

__all__ = ["METADATA_RESEND_INTERVAL", "Collection", "CollectionMaker", "Part"]

logger = logging.getLogger(__name__)

METADATA_RESEND_INTERVAL = 60.0
"""Seconds after which unchanged metadata is sent again (Prometheus: ``metadata_config.send_interval``)."""


@dataclass(eq=False)
class Part:
    """One request of a queued collection, as one endpoint delivers it.

    ``body`` is None while the request waits only on disk (``record_id`` is its spool record);
    the sender reads it back when its turn comes.
    """

    samples: int
    protocol: str
    body: bytes | None
    size: int
    record_id: int | None = None

    @classmethod
    def of(cls, request: Request) -> Part:
        return cls(request.samples, request.protocol, request.body, len(request.body))


@dataclass(eq=False)
class Collection:
    """The requests of one collection for one endpoint, delivered before the next collection's.

    ``fallback`` holds the same data as remote-write 1.0 requests when ``parts`` are 2.0 and the
    endpoint is still negotiating; they are sent instead if the receiver turns out not to speak
    2.0.  ``unsendable`` counts, by reason, the samples the encoder left out.
    """

    seq: int
    timestamp_ms: int
    parts: list[Part]
    fallback: list[Part] | None = None
    unsendable: Mapping[str, int] = field(default_factory=dict)
    held: int = 0  # bytes counted against the sender's memory bound while queued

    @property
    def samples(self) -> int:
        return sum(part.samples for part in self.parts)

    @property
    def nbytes(self) -> int:
        """Bytes of the bodies held in memory (a spooled body waits on disk)."""
        return sum(p.size for p in (*self.parts, *(self.fallback or ())) if p.body is not None)

    def all_parts(self) -> list[Part]:
        return [*self.parts, *(self.fallback or ())]


class CollectionMaker:
    """Encode one collection in every protocol the endpoints need and submit it to each.

    Args:
        senders: the endpoints' senders.
        encoder: the 1.0 encoder; it also remembers the series sent, for stale markers.
        encoder_v2: the 2.0 encoder, when some endpoint may speak 2.0.
        max_samples: series per request.
        max_bytes: bytes per request on the wire (``max_bytes_per_send``), or None.
        debug: log every collection as text.
        clock: monotonic clock for the metadata resend interval.
        to: whose collections these are, for the debug log: empty when every endpoint is
            sent the same series (no relabel rules tell them apart).
        give_back: called once an encoder's whole state is dropped (see ``give_back``).
    """

    def __init__(
        self,
        senders: Sequence[EndpointSender],
        *,
        encoder: Any,
        encoder_v2: Any,
        max_samples: int,
        max_bytes: int | None,
        debug: bool,
        clock: Callable[[], float] = time.monotonic,
        to: str = "",
        give_back: Callable[[], object] | None = None,
    ) -> None:
        self._senders = senders
        self.encoders = {"1.0": encoder, "2.0": encoder_v2}
        self._max_samples = max_samples
        self._max_bytes = max_bytes
        self._debug = debug
        self._clock = clock
        self._last_metadata_at = -METADATA_RESEND_INTERVAL
        self._to = to
        self._give_back = give_back if give_back is not None else _memory.give_back
        self._buffers: dict[str, JoinBuffer] = {}  # per protocol: where each request is joined

    def protocols_wanted(self) -> set[str]:
        """The protocols this push is encoded in: each sender's, and 1.0 beside an unconfirmed 2.0."""
        if self.encoders["2.0"] is None:
            return {"1.0"}
        wanted = set()
        for sender in self._senders:
            protocol = sender.protocol()
            wanted.add(protocol)
            if protocol == "2.0" and sender.needs_fallback():
                wanted.add("1.0")
        return wanted

    def make(self, families: Iterable[Any], timestamp_ms: int, seq: int, *, stale_all: bool) -> None:
        """Encode ``families`` (or stale markers for every series sent) and submit them as ``seq``.

        Each protocol's requests are cut and compressed while its encoder writes them
        (:class:`RequestStream`), so the push never exists whole and uncompressed; with
        ``debug``, which logs the whole push, it does.
        """
        wanted = self.protocols_wanted()
        dropped = False
        for protocol, encoder in self.encoders.items():
            if encoder is not None and protocol not in wanted:
                # auto mode has settled on the other protocol: keep one encoder's state
                dropped = encoder.reset() or dropped
                self._buffers.pop(protocol, None)
        if dropped:
            self._give_back()
        encoded, streams = self._encode(wanted, families, timestamp_ms, stale_all)
        v1 = encoded.get("1.0")
        now = self._clock()
        send_metadata = (v1 is not None and not stale_all) and (
            v1.metadata_changed or now - self._last_metadata_at >= METADATA_RESEND_INTERVAL
        )
        if send_metadata:
            self._last_metadata_at = now
        if self._debug:
            _log_debug(encoded["1.0" if v1 is not None else "2.0"], seq, self._to)
        requests: dict[str, list[Request]] = {}
        for protocol, collection in encoded.items():
            stream = streams.get(protocol)
            if stream is None:  # debug: the blocks were kept whole for the log
                requests[protocol] = compress_requests(
                    collection, protocol, self._max_samples, metadata=send_metadata, max_bytes=self._max_bytes
                )
            else:
                metadata = collection.metadata if send_metadata and protocol == "1.0" else b""
                requests[protocol] = stream.finish(metadata)
        for sender in self._senders:
            protocol = sender.protocol()
            fallback = None
            if protocol == "2.0" and sender.needs_fallback():
                fallback = [Part.of(r) for r in requests["1.0"]] or None
            # Submitted even when empty, so a flush() waiting on this seq sees it finish.
            sender.submit(
                Collection(
                    seq,
                    timestamp_ms,
                    [Part.of(r) for r in requests[protocol]],
                    fallback,
                    encoded[protocol].dropped,
                )
            )


    def _encode(
        self, wanted: set[str], families: Iterable[Any], timestamp_ms: int, stale_all: bool
    ) -> tuple[dict[str, Any], dict[str, RequestStream]]:
        """Encode in each ``wanted`` protocol; return the collections and (unless ``debug``) their streams."""
        encoded: dict[str, Any] = {}
        streams: dict[str, RequestStream] = {}
        for protocol in sorted(wanted):
            encoder = self.encoders[protocol]
            stream = None
            if not self._debug:
                buffer = self._buffers.setdefault(protocol, JoinBuffer())
                stream = RequestStream(protocol, self._max_samples, max_bytes=self._max_bytes, buffer=buffer)
                streams[protocol] = stream
            encoded[protocol] = (
                encoder.stale_all(timestamp_ms, stream=stream)
                if stale_all
                else encoder.encode(families, timestamp_ms, stream=stream)
            )
        return encoded, streams


def _log_debug(collection: Any, seq: int, to: str) -> None:
    protocol = "1.0" if isinstance(collection, EncodedCollection) else "2.0"
    text = debug_text(collection.body(metadata=False), protocol)
    logger.info(
        "Remote-write push #%d at %d ms%s, %d samples:\n%s",
        seq,
        collection.timestamp_ms,
        f" to {to}" if to else "",
        collection.samples,
        text,
    )


def debug_text(body: bytes, protocol: str = "1.0") -> str:
    """Render an uncompressed request of ``protocol`` as text for ``debug``."""
    try:
        from .._protocol.decode import decode_write_request

        return decode_write_request(body, compressed=False, protocol=protocol).to_text()
    except Exception as exc:  # protobuf missing, say
        return f"(cannot render: {exc})\n"
