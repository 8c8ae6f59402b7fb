"""``generate_write_request``: the remote-write analogue of ``prometheus_client.generate_latest``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import REGISTRY

from .._exceptions import ConfigurationError
from . import snappy as _snappy
from .encode import Encoder
from .families import ONE_SHOT_WARNINGS
from .registry import read
from .relabel import RelabelRules, compile_rules

__all__ = ["generate_write_request"]


def generate_write_request(
    registry: Any = REGISTRY,
    *,
    timestamp_ms: int | None = None,
    job: str | None = None,
    instance: str | None = None,
    external_labels: Mapping[str, str] | None = None,
    protocol: str = "1.0",
    write_relabel_configs: Sequence[Mapping[str, Any]] | RelabelRules | None = None,
) -> bytes:
    """Collect ``registry`` once and return the request body exactly as it goes on the wire.

    The body is a snappy (block) compressed ``prometheus.WriteRequest`` holding every sample
    under the name and labels a scrape of ``/metrics`` would give, plus each family's metadata.
    POST it with the headers of :data:`prometheus_rw_bridge.REMOTE_WRITE_HEADERS`.  Samples
    that cannot be sent (an empty name, a value that is no number...) are left out, each
    problem logged once per process.

    Args:
        registry: any object with ``collect()``; defaults to prometheus_client's ``REGISTRY``.
        timestamp_ms: the collection timestamp in milliseconds since the epoch; now by
            default.  Samples that carry their own timestamp keep it.
        job: the ``job`` label added to series without one; the program's name by default,
            ``""`` for none.
        instance: the ``instance`` label added likewise; the host name by default.
        external_labels: further labels added to series that lack them.
        protocol: ``"1.0"`` (``prometheus.WriteRequest``) or ``"2.0"``
            (``io.prometheus.write.v2.Request``).
        write_relabel_configs: Prometheus relabel rules applied to every series (after the
            target labels are added), as for ``enable_remote_write``: a list of rule mappings
            (``source_labels``, ``regex``, ``action``, ...).  See docs/relabelling.md.

    Returns:
        The compressed request body.

    Raises:
        ValueError: an external label name or the protocol is invalid, or a relabel rule
            (a ``ConfigurationError`` naming the rule's index and field).
        MissingDependencyError: cramjam cannot be imported.
    """
    if protocol not in ("1.0", "2.0"):
        raise ConfigurationError(
            f"protocol: {protocol!r} is not allowed here; use '1.0' or '2.0' "
            "('auto' needs a receiver to negotiate with: see enable_remote_write)"
        )
    rules = compile_rules(write_relabel_configs)
    if timestamp_ms is None:
        timestamp_ms = int(time.time() * 1000)
    options: dict[str, Any] = {
        "job": job,
        "instance": instance,
        "external_labels": external_labels,
        "relabel": rules.apply if rules else None,
        "warned": ONE_SHOT_WARNINGS,
    }
    if protocol == "2.0":
        from .encode_v2 import EncoderV2

        encoder_v2 = EncoderV2(**options)
        return _snappy.compress(encoder_v2.encode(read(registry), timestamp_ms).body())
    encoder = Encoder(**options)
    return _snappy.compress(encoder.encode(read(registry), timestamp_ms).body())
