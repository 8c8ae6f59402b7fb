"""Endpoints grouped by their ``write_relabel_configs``: one set of encoders per group.

Relabel rules decide which series an endpoint gets and under which labels, so endpoints with
different rules need differently encoded series.  Endpoints with equal rules (or none) share
one encoding, as every endpoint did before rules existed: the registry is still read once per
push, and each group encodes it once per protocol its endpoints want.  The rules run inside
the group's encoders, once per series, when its template is built (``_protocol.families``), so
staleness, metadata, duplicate counting and the ``auto`` protocol switch work per group with
no code of their own.  Self-metrics are series of the pushed registry like any other: every
group relabels them with its rules, as Prometheus relabels everything it sends to a remote.

Used by the bridge (``setup``, ``bridge``) and by ``push_to_remote_write``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._protocol.encode import Encoder

if TYPE_CHECKING:
    from .._config.settings import EndpointSettings, Settings
    from .._protocol.encode_v2 import EncoderV2
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
) -> tuple[Encoder, EncoderV2 | None]:
    """Build the 1.0 encoder of one group and, unless the protocol is ``1.0``, its 2.0 encoder.

    Args:
        settings: the resolved settings (target labels, metric filter, protocol).
        rules: the group's relabel rules, or ``None``.
        warned: the problems already logged; encoders sharing it log each problem once.
        track_staleness: whether the encoders emit stale markers for series that went away.
    """
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
        from .._protocol.encode_v2 import EncoderV2

        encoder_v2 = EncoderV2(**options)
    return Encoder(**options), encoder_v2


@dataclass(eq=False)
class EncoderGroup:
    """Endpoints that are sent the same series, and the encoders that make them.

    ``last_metadata_at`` is when (on the bridge's clock) this group last sent 1.0 metadata.
    """

    senders: list[EndpointSender]
    encoder: Encoder
    encoder_v2: EncoderV2 | None = None
    last_metadata_at: float = float("-inf")

    def protocols_wanted(self) -> set[str]:
        """The protocols this push is encoded in: each sender's, and 1.0 beside an unconfirmed 2.0."""
        if self.encoder_v2 is None:
            return {"1.0"}
        wanted = set()
        for sender in self.senders:
            protocol = sender.protocol()
            wanted.add(protocol)
            if protocol == "2.0" and sender.needs_fallback():
                wanted.add("1.0")
        return wanted

    def encoder_for(self, protocol: str) -> Any:
        """The encoder of ``protocol`` (``"1.0"`` or ``"2.0"``)."""
        return self.encoder_v2 if protocol == "2.0" else self.encoder

    def reset_unwanted(self, wanted: set[str]) -> None:
        """Release the state of an encoder no endpoint wants now (``auto`` settled on the other protocol)."""
        for protocol, encoder in (("1.0", self.encoder), ("2.0", self.encoder_v2)):
            if encoder is not None and protocol not in wanted:
                encoder.reset()
