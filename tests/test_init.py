"""The public surface: exactly these names, importable from the package root."""

from __future__ import annotations

import prometheus_rw_bridge

EXPORTED = {
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
}


def test_exported_names() -> None:
    assert set(prometheus_rw_bridge.__all__) == EXPORTED
    assert len(prometheus_rw_bridge.__all__) == len(EXPORTED)
    for name in EXPORTED:
        assert hasattr(prometheus_rw_bridge, name), name


def test_importing_the_package_imports_no_http_client_or_protobuf() -> None:
    """Importing must stay cheap and safe: httpx and protobuf load only when used."""
    import subprocess
    import sys

    code = "import sys, prometheus_rw_bridge; print('httpx' in sys.modules, 'google.protobuf' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_one_version_string() -> None:
    """pyproject.toml, ``__version__`` and the User-Agent come from ``_version``, the one source."""
    from importlib.metadata import version

    from prometheus_rw_bridge import REMOTE_WRITE_HEADERS, REMOTE_WRITE_V2_HEADERS

    assert version("prometheus-rw-bridge") == prometheus_rw_bridge.__version__
    expected = f"prometheus-rw-bridge/{prometheus_rw_bridge.__version__}"
    assert REMOTE_WRITE_HEADERS["User-Agent"] == expected
    assert REMOTE_WRITE_V2_HEADERS["User-Agent"] == expected
