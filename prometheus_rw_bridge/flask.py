"""Flask: an extension that starts the bridge from ``app.config``, then the environment.

::

    from flask import Flask
    from prometheus_rw_bridge.flask import RemoteWrite

    app = Flask(__name__)
    app.config["PROMETHEUS_REMOTE_WRITE_URL"] = "http://prometheus:9090/api/v1/write"
    RemoteWrite(app)

or in an application factory::

    remote_write = RemoteWrite()

    def create_app():
        app = Flask(__name__)
        app.config.from_prefixed_env()  # for example
        remote_write.init_app(app)
        return app

``app.config`` keys are the environment variable names (``PROMETHEUS_REMOTE_WRITE_URL``,
``PROMETHEUS_REMOTE_WRITE_INTERVAL``, ... see ``prometheus_rw_bridge._config``); their values
may be strings as in the environment, or typed (``5``, ``True``, a list of URLs, a dict of
labels).  Precedence: arguments of ``RemoteWrite(...)``, then ``app.config``, then the
environment, then the defaults.

The bridge is stored in ``app.extensions["prometheus_rw_bridge"]`` and closed (one final push)
at interpreter exit.  Python skips exit handlers when killed by an unhandled ``SIGTERM``: run
under a server that stops gracefully (gunicorn, uWSGI, or the development server with Ctrl-C).
With the development server's reloader, both the watching and the serving process load the app;
set ``PROMETHEUS_REMOTE_WRITE_ENABLED=false`` in development or disable the reloader.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ._api import enable_remote_write
from ._config.settings import ENV_PREFIX
from ._delivery.bridge import RemoteWriteBridge

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import AdapterOptions

__all__ = ["EXTENSION_KEY", "RemoteWrite"]

EXTENSION_KEY = "prometheus_rw_bridge"
"""The key of the running bridge in ``app.extensions``."""


class RemoteWrite:
    """The Flask extension.

    Args:
        app: the application; or call :meth:`init_app` later.
        **options: passed to :func:`~prometheus_rw_bridge.enable_remote_write` (``url``,
            ``registry`` and every option of the reference); they win over ``app.config`` and the
            environment.
    """

    def __init__(self, app: Any = None, **options: Unpack[AdapterOptions]) -> None:
        self._options = options
        self.bridge: RemoteWriteBridge | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Any) -> RemoteWriteBridge:
        """Start (or reuse) the bridge for ``app`` and store it in ``app.extensions``.

        Returns:
            The bridge; disabled, and harmless, when no URL is configured anywhere.

        Raises:
            ConfigurationError: a setting in the arguments, ``app.config`` or the environment is malformed.
        """
        config = {key: value for key, value in app.config.items() if key.startswith(ENV_PREFIX)}
        options = self._options.copy()
        options["environ"] = {**(options.get("environ") or os.environ), **config}
        bridge = enable_remote_write(**options)
        app.extensions[EXTENSION_KEY] = bridge
        self.bridge = bridge
        return bridge

    def close(self, app: Any = None, timeout: float = 5.0) -> None:
        """Close the bridge of ``app`` (or of the last app initialised): one final push, then stop."""
        bridge = app.extensions.get(EXTENSION_KEY) if app is not None else self.bridge
        if bridge is not None:
            bridge.close(timeout)
