"""Python client for tradewire, the event bus / trading-pipeline daemon.

Speaks the JSON-RPC 2.0 wire contract of the protocol (``docs/PROTOCOL.md`` in
the tradewire repository), api_level 2, over the daemon's Unix socket.
Standard library only.

* :class:`Client` -- blocking; :class:`AsyncClient` -- asyncio.
* :func:`run_handler` -- a remote event handler that reconnects and resumes.
* :class:`Consumer` / :class:`AsyncConsumer` -- a durable, at-least-once consumer
  (section 11): deliveries to acknowledge, shared by a queue group, reconnecting.
* :class:`StageWorker` -- serve a pipeline stage (remote stages, section 9).
* :func:`default_socket_path` -- the socket path rules of docs/PROTOCOL.md section 1.
* Both clients refuse an unsafe default socket directory and a server that
  runs as another user (:class:`UntrustedSocket`) before sending anything.
* ``python -m tradewire`` -- a CLI.
"""
from __future__ import annotations

__version__ = "0.1.0"
#: the protocol level this client implements
API_LEVEL = 2

from .aio import AsyncClient, AsyncConsumer, AsyncDelivery, AsyncSubscription  # noqa: E402
from .client import Client, Subscription  # noqa: E402
from .consumer import Consumer, Delivery  # noqa: E402
from .errors import (  # noqa: E402
    BatchTooLarge,
    ConnectionLost,
    DaemonUnavailable,
    DeadLetterNotFoundError,
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
    RateLimitedError,
    RPCError,
    ShuttingDown,
    SubscriptionClosed,
    Timeout,
    TradewireError,
    UnknownConsumerError,
    UnsafeSocketDirectory,
    UntrustedPeer,
    UntrustedSocket,
    error_from_object,
)
from .events import Event, EventsDropped  # noqa: E402
from .handler import run_handler  # noqa: E402
from .paths import check_peer, check_socket_dir, default_socket_path, resolve_socket_path  # noqa: E402
from .stage import AsyncStageClient, StageCall, StageClient, StageSpec, StageWorker  # noqa: E402

__all__ = [
    "__version__",
    "API_LEVEL",
    "Client",
    "Subscription",
    "AsyncClient",
    "AsyncSubscription",
    "Consumer",
    "Delivery",
    "AsyncConsumer",
    "AsyncDelivery",
    "run_handler",
    "StageWorker",
    "StageCall",
    "StageSpec",
    "StageClient",
    "AsyncStageClient",
    "Event",
    "EventsDropped",
    "default_socket_path",
    "resolve_socket_path",
    "check_socket_dir",
    "check_peer",
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
    "RateLimitedError",
    "UnknownConsumerError",
    "DeadLetterNotFoundError",
    "NotConnected",
    "DaemonUnavailable",
    "ConnectionLost",
    "UntrustedSocket",
    "UnsafeSocketDirectory",
    "UntrustedPeer",
    "Timeout",
    "ProtocolError",
    "SubscriptionClosed",
    "error_from_object",
]
