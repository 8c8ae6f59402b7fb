"""FastAPI and Starlette: start the bridge with the app, close it (one final push) at shutdown.

A new app::

    from fastapi import FastAPI
    from prometheus_rw_bridge.fastapi import lifespan

    app = FastAPI(lifespan=lifespan())  # URL etc. from PROMETHEUS_REMOTE_WRITE_* or as arguments

An app with a lifespan of its own::

    app = FastAPI(lifespan=combine_lifespans(my_lifespan, job="api"))

or, for an app object that already exists, ``install(app)``.

The bridge starts before the app's own start-up and closes after the app's own shutdown, so
metrics recorded while starting or stopping are pushed too.  While running it is available as
``app.state.remote_write_bridge``.  The options are those of
:func:`~prometheus_rw_bridge.enable_remote_write`, resolved when the app starts.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from ._api import enable_remote_write
from ._delivery.bridge import RemoteWriteBridge

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import AdapterOptions

__all__ = ["Lifespan", "combine_lifespans", "install", "lifespan"]

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]
"""What Starlette and FastAPI take as ``lifespan=``: ``app -> async context manager``."""

STATE_ATTRIBUTE = "remote_write_bridge"


async def _close(bridge: RemoteWriteBridge, timeout: float) -> None:
    """Close ``bridge`` in a worker thread, so the event loop keeps serving while it waits."""
    try:
        import anyio.to_thread
    except ImportError:  # pragma: no cover - Starlette always brings anyio
        import asyncio

        await asyncio.to_thread(bridge.close, timeout)
    else:
        await anyio.to_thread.run_sync(bridge.close, timeout)


def lifespan(*, close_timeout: float = 5.0, **options: Unpack[AdapterOptions]) -> Lifespan:
    """Return a lifespan that runs a remote-write bridge for as long as the app runs.

    Args:
        close_timeout: seconds the final push may take at shutdown.
        **options: passed to :func:`~prometheus_rw_bridge.enable_remote_write` (``url``,
            ``registry``, ``interval``, ``job``, ...).

    Returns:
        A lifespan for ``FastAPI(lifespan=...)`` or ``Starlette(lifespan=...)``.
    """

    @contextlib.asynccontextmanager
    async def remote_write_lifespan(app: Any) -> AsyncIterator[None]:
        bridge = enable_remote_write(**options)
        state = getattr(app, "state", None)
        if state is not None:
            setattr(state, STATE_ATTRIBUTE, bridge)
        try:
            yield None
        finally:
            await _close(bridge, close_timeout)

    return remote_write_lifespan


def combine_lifespans(
    app_lifespan: Lifespan | None, *, close_timeout: float = 5.0, **options: Unpack[AdapterOptions]
) -> Lifespan:
    """Wrap an app's own lifespan so the bridge runs around it.

    The bridge starts first and closes last; whatever the app's lifespan yields (a state
    mapping, or nothing) is passed through.

    Args:
        app_lifespan: the app's lifespan, or ``None``.
        close_timeout: seconds the final push may take at shutdown.
        **options: passed to :func:`~prometheus_rw_bridge.enable_remote_write`.

    Returns:
        The combined lifespan.
    """
    ours = lifespan(close_timeout=close_timeout, **options)
    if app_lifespan is None:
        return ours

    @contextlib.asynccontextmanager
    async def combined(app: Any) -> AsyncIterator[Any]:
        async with ours(app), app_lifespan(app) as state:
            yield state

    return combined


def install(app: Any, *, close_timeout: float = 5.0, **options: Unpack[AdapterOptions]) -> None:
    """Add the bridge to an existing FastAPI or Starlette app, around its current lifespan.

    Call it before the app starts.

    Args:
        app: the FastAPI or Starlette application.
        close_timeout: seconds the final push may take at shutdown.
        **options: passed to :func:`~prometheus_rw_bridge.enable_remote_write`.
    """
    router = app.router
    router.lifespan_context = combine_lifespans(
        router.lifespan_context, close_timeout=close_timeout, **options
    )
