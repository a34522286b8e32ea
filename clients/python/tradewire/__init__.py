"""Python client for tradewire, the event bus / trading-pipeline daemon.

Speaks the JSON-RPC 2.0 wire contract of ``shared/PROTOCOL.md`` (api_level 1)
over the daemon's Unix socket.  Standard library only.

* :class:`Client` -- blocking; :class:`AsyncClient` -- asyncio.
* :func:`run_handler` -- a remote event handler that reconnects and resumes.
* :func:`default_socket_path` -- the socket path rules of PROTOCOL.md section 1.
* ``python -m tradewire`` -- a CLI.
"""
from __future__ import annotations

__version__ = "0.1.0"
#: the protocol level this client implements
API_LEVEL = 1

from .aio import AsyncClient, AsyncSubscription  # noqa: E402
from .client import Client, Subscription  # noqa: E402
from .errors import (  # noqa: E402
    BatchTooLarge,
    ConnectionLost,
    DaemonUnavailable,
    Forbidden,
    InternalError,
    InvalidParams,
    InvalidRequest,
    MessageTooLarge,
    MethodNotFound,
    NoMarketData,
    NotConnected,
    Overloaded,
    ParseError,
    PipelineTimeout,
    ProtocolError,
    RPCError,
    ShuttingDown,
    SubscriptionClosed,
    Timeout,
    TradewireError,
    error_from_object,
)
from .events import Event, EventsDropped  # noqa: E402
from .handler import run_handler  # noqa: E402
from .paths import default_socket_path, resolve_socket_path  # noqa: E402

__all__ = [
    "__version__",
    "API_LEVEL",
    "Client",
    "Subscription",
    "AsyncClient",
    "AsyncSubscription",
    "run_handler",
    "Event",
    "EventsDropped",
    "default_socket_path",
    "resolve_socket_path",
    "TradewireError",
    "RPCError",
    "ParseError",
    "InvalidRequest",
    "MessageTooLarge",
    "BatchTooLarge",
    "MethodNotFound",
    "InvalidParams",
    "InternalError",
    "ShuttingDown",
    "Overloaded",
    "NoMarketData",
    "PipelineTimeout",
    "Forbidden",
    "NotConnected",
    "DaemonUnavailable",
    "ConnectionLost",
    "Timeout",
    "ProtocolError",
    "SubscriptionClosed",
    "error_from_object",
]
