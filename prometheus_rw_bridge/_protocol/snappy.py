"""Snappy *block* compression (not the framed format), as remote write requires, via cramjam.

cramjam is probed at import; a missing one fails only when compression is used, with the
install hint, so importing this package never breaks a host application.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import MissingDependencyError

__all__ = ["available", "compress", "decompress", "is_framed", "missing"]

_cramjam: Any
try:
    import cramjam as _cramjam
except ImportError:  # pragma: no cover - exercised in a subprocess test
    _cramjam = None

# Every snappy framed stream starts with this stream-identifier chunk.
_FRAMED_MAGIC = b"\xff\x06\x00\x00sNaPpY"


def available() -> bool:
    """Tell whether snappy compression can be used."""
    return _cramjam is not None


def missing() -> MissingDependencyError | None:
    """Return the error compression raises without cramjam (it names the install command), or None."""
    return None if _cramjam is not None else MissingDependencyError("cramjam", "snappy compression")


def _require() -> Any:
    error = missing()
    if error is not None:
        raise error
    return _cramjam


def compress(data: bytes | bytearray | memoryview) -> bytes:
    """Compress ``data`` in the snappy block format."""
    return bytes(_require().snappy.compress_raw(data))


def decompress(data: bytes) -> bytes:
    """Decompress a snappy block; raise ``ValueError`` for anything else (framed snappy included)."""
    if is_framed(data):
        raise ValueError("body is framed snappy; remote write requires the snappy block format")
    try:
        return bytes(_require().snappy.decompress_raw(data))
    except _require().DecompressionError as exc:
        raise ValueError(f"body is not valid block snappy: {exc}") from exc


def is_framed(data: bytes) -> bool:
    """Tell whether ``data`` starts like a snappy *framed* stream."""
    return data[: len(_FRAMED_MAGIC)] == _FRAMED_MAGIC
