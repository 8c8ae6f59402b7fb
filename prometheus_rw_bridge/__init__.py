"""Push prometheus_client metrics to Prometheus-compatible backends over remote write.

The public surface is re-exported here; everything else lives in private modules.
"""

from __future__ import annotations

from ._api import enable_remote_write, push_to_remote_write
from ._config.settings import EndpointSettings
from ._delivery.bridge import BridgeStats, RemoteWriteBridge
from ._exceptions import (
    ConfigurationError,
    EncodeError,
    MissingDependencyError,
    NonRetryableReceiverError,
    ReceiverError,
    RemoteWriteError,
    RetryableReceiverError,
    SendError,
    SpoolLockedError,
    TransportError,
)
from ._protocol.decode import (
    DecodedExemplar,
    DecodedMetadata,
    DecodedRequest,
    DecodedSample,
    DecodedSeries,
    decode_write_request,
)
from ._protocol.exposition import generate_write_request
from ._protocol.headers import REMOTE_WRITE_HEADERS, REMOTE_WRITE_V2_HEADERS
from ._protocol.wire import STALE_NAN, STALE_NAN_BITS, is_stale_nan
from ._version import __version__

__all__ = [
    "REMOTE_WRITE_HEADERS",
    "REMOTE_WRITE_V2_HEADERS",
    "STALE_NAN",
    "STALE_NAN_BITS",
    "BridgeStats",
    "ConfigurationError",
    "DecodedExemplar",
    "DecodedMetadata",
    "DecodedRequest",
    "DecodedSample",
    "DecodedSeries",
    "EncodeError",
    "EndpointSettings",
    "MissingDependencyError",
    "NonRetryableReceiverError",
    "ReceiverError",
    "RemoteWriteBridge",
    "RemoteWriteError",
    "RetryableReceiverError",
    "SendError",
    "SpoolLockedError",
    "TransportError",
    "__version__",
    "decode_write_request",
    "enable_remote_write",
    "generate_write_request",
    "is_stale_nan",
    "push_to_remote_write",
]
