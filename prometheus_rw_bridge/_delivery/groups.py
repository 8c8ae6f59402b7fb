"""Endpoints grouped by their ``write_relabel_configs``: one set of encoders per group.

Relabel rules decide which series an endpoint gets and under which labels, so endpoints with
different rules need differently encoded series.  Endpoints with equal rules (or none) share
one encoding, as every endpoint did before rules existed: the registry is still read once per
push, and each group encodes it once per protocol its endpoints want.  The rules run inside
the group's encoders, once per series, when its template is built (``_protocol.families``), so
staleness, metadata, duplicate counting and the ``auto`` protocol switch work per group with
no code of their own.  Self-metrics are series of the pushed registry like any other: every
group relabels them with its rules, as Prometheus relabels everything it sends to a remote.

Used by the bridge (``setup``; each group gets a ``collection.CollectionMaker``) and by
``push_to_remote_write``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .._protocol.encode import Encoder

if TYPE_CHECKING:
    from .._config.settings import EndpointSettings, Settings
    from .._protocol.relabel import RelabelRules
    from .sender import EndpointSender

__all__ = ["EncoderGroup", "group_by_rules", "make_encoders"]


def group_by_rules(endpoints: Sequence[EndpointSettings]) -> list[tuple[RelabelRules | None, list[int]]]:
    """Return each distinct rule set (``None``: no rules) with the indices of its endpoints, in order.

    Rules are equal when their configurations are (``RelabelRules`` compare by value), so a
    rule set given once for every endpoint, or twice alike, makes one group.
    """
    groups: dict[RelabelRules | None, list[int]] = {}
    for index, endpoint in enumerate(endpoints):
        rules = endpoint.write_relabel_configs
        groups.setdefault(rules if rules else None, []).append(index)  # [] is no rules
    return list(groups.items())


def make_encoders(
    settings: Settings,
    rules: RelabelRules | None,
    *,
    warned: set[tuple[str, str]],
    track_staleness: bool,
    types: Mapping[str, Callable[..., Any]] | None = None,
) -> tuple[Any, Any]:
    """Build the 1.0 encoder of one group and, unless the protocol is ``1.0``, its 2.0 encoder.

    Args:
        settings: the resolved settings (target labels, metric filter, protocol).
        rules: the group's relabel rules, or ``None``.
        warned: the problems already logged; encoders sharing it log each problem once.
        track_staleness: whether the encoders emit stale markers for series that went away.
        types: the encoder to build for a protocol (``"1.0"``, ``"2.0"``), called with the
            encoders' keyword options; ``_protocol``'s ``Encoder`` and ``EncoderV2`` by default.
    """
    types = types or {}
    options: dict[str, Any] = {
        "job": settings.job,
        "instance": settings.instance,
        "external_labels": settings.external_labels,
        "metric_filter": settings.metric_filter,
        "relabel": None if rules is None else rules.apply,
        "track_staleness": track_staleness,
        "warned": warned,
    }
    encoder_v2 = None
    if settings.protocol != "1.0":
        if "2.0" in types:
            encoder_v2 = types["2.0"](**options)
        else:
            from .._protocol.encode_v2 import EncoderV2

            encoder_v2 = EncoderV2(**options)
    return types.get("1.0", Encoder)(**options), encoder_v2


class EncoderGroup(NamedTuple):
    """Endpoints that are sent the same series, and the encoders that make them (``encoder_v2``:
    None when the protocol is ``1.0``)."""

    senders: Sequence[EndpointSender]
    encoder: Any
    encoder_v2: Any = None
