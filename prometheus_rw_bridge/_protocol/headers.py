"""The fixed HTTP headers of each remote-write protocol version, written once."""

from __future__ import annotations

from types import MappingProxyType

from .._version import __version__

__all__ = ["REMOTE_WRITE_HEADERS", "REMOTE_WRITE_V2_HEADERS", "USER_AGENT", "headers_for"]

USER_AGENT = f"prometheus-rw-bridge/{__version__}"

REMOTE_WRITE_HEADERS = MappingProxyType(
    {
        "Content-Encoding": "snappy",
        "Content-Type": "application/x-protobuf",
        "User-Agent": USER_AGENT,
        "X-Prometheus-Remote-Write-Version": "0.1.0",
    }
)
"""Headers of a remote-write 1.0 request (the 1.0 spec fixes the version header at 0.1.0)."""

REMOTE_WRITE_V2_HEADERS = MappingProxyType(
    {
        "Content-Encoding": "snappy",
        "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        "User-Agent": USER_AGENT,
        "X-Prometheus-Remote-Write-Version": "2.0.0",
    }
)
"""Headers of a remote-write 2.0 request."""


def headers_for(protocol: str) -> MappingProxyType[str, str]:
    """Return the fixed headers for ``protocol`` (``"1.0"`` or ``"2.0"``)."""
    return REMOTE_WRITE_V2_HEADERS if protocol == "2.0" else REMOTE_WRITE_HEADERS
