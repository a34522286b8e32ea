"""Exception types raised by the tradewire client.

Two families:

* :class:`RPCError` -- the daemon answered a request with a JSON-RPC error
  object.  ``.code``, ``.message``, ``.type`` (``error.data.type``, the stable
  snake_case name from docs/PROTOCOL.md section 2) and ``.data`` are kept.  The
  concrete subclass is chosen by ``data.type`` (falling back to ``code``).
* :class:`NotConnected` (a builtin :class:`ConnectionError`) -- there is no
  usable connection: :class:`DaemonUnavailable` when the socket cannot be
  reached, :class:`ConnectionLost` when an open connection closed,
  :class:`UntrustedSocket` (also a :class:`ConnectionRefusedError`) when the
  client refused to talk to what is there: :class:`UnsafeSocketDirectory`
  (the default socket directory is not ours, not 0700, or a symlink) and
  :class:`UntrustedPeer` (the server runs as another user).

Plus :class:`Timeout` (a builtin :class:`TimeoutError`) for client-side
timeouts and :class:`ProtocolError` for a daemon that breaks the wire contract.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Type

__all__ = [
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

START_HINT = "start the daemon with `make run` (from the repo root) or `tradewired`"


class TradewireError(Exception):
    """Base class of every exception raised by this package."""


# --------------------------------------------------------------------------
# JSON-RPC errors returned by the daemon
# --------------------------------------------------------------------------


class RPCError(TradewireError):
    """The daemon answered with a JSON-RPC error object.

    Attributes: ``code`` (int), ``message`` (str), ``type`` (``data.type``,
    or ``None`` if the daemon sent none), ``data`` (the whole ``data`` value,
    usually a dict), ``method`` (the method called, when known).
    """

    #: the ``data.type`` values this class stands for (first one is canonical)
    TYPES: tuple = ()
    #: the JSON-RPC code this class stands for
    CODE: Optional[int] = None

    def __init__(
        self,
        code: int,
        message: str,
        data: Any = None,
        *,
        method: Optional[str] = None,
    ) -> None:
        self.code = code
        self.message = message
        self.data = data
        self.method = method
        t = data.get("type") if isinstance(data, dict) else None
        self.type: Optional[str] = t if isinstance(t, str) else None
        super().__init__(code, message)

    def __str__(self) -> str:
        where = f"{self.method}: " if self.method else ""
        kind = f" [{self.type}]" if self.type else ""
        text = f"{where}{self.message} (code {self.code}){kind}"
        details = self._details()
        return f"{text}: {details}" if details else text

    def _details(self) -> str:
        return ""

    def to_dict(self) -> Dict[str, Any]:
        """The error object as the daemon sent it."""
        d: Dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            d["data"] = self.data
        return d


class ParseError(RPCError):
    """-32700 ``parse_error``: the daemon could not parse what it got."""

    TYPES = ("parse_error",)
    CODE = -32700


class InvalidRequest(RPCError):
    """-32600 ``invalid_request`` (and its sub-kinds below)."""

    TYPES = ("invalid_request",)
    CODE = -32600


class MessageTooLarge(InvalidRequest):
    """-32600 ``message_too_large``: a request line exceeded the daemon's maximum."""

    TYPES = ("message_too_large",)


class BatchTooLarge(InvalidRequest):
    """-32600 ``batch_too_large``: more than 1000 entries in one batch."""

    TYPES = ("batch_too_large",)


class MethodNotFound(RPCError):
    """-32601 ``method_not_found``."""

    TYPES = ("method_not_found",)
    CODE = -32601


class InvalidParams(RPCError):
    """-32602 ``invalid_params``. ``.errors`` is ``data.errors``: a list of
    ``{"path": JSON-Pointer, "message": str}``."""

    TYPES = ("invalid_params",)
    CODE = -32602

    @property
    def errors(self) -> List[Dict[str, Any]]:
        errs = self.data.get("errors") if isinstance(self.data, dict) else None
        return list(errs) if isinstance(errs, list) else []

    def _details(self) -> str:
        parts = []
        for e in self.errors:
            if isinstance(e, dict):
                path = e.get("path") or "/"
                parts.append(f"{path}: {e.get('message', '')}")
        return "; ".join(parts)


class InternalError(RPCError):
    """-32603 ``internal_error``: a daemon bug (logged with the request id)."""

    TYPES = ("internal_error",)
    CODE = -32603


class ShuttingDown(RPCError):
    """-32000 ``shutting_down``: the daemon is draining."""

    TYPES = ("shutting_down",)
    CODE = -32000


class Overloaded(RPCError):
    """-32001 ``overloaded``: too many requests in flight on this connection."""

    TYPES = ("overloaded",)
    CODE = -32001


class NoMarketData(RPCError):
    """-32010 ``no_market_data``: the data stage produced nothing for any symbol."""

    TYPES = ("no_market_data",)
    CODE = -32010


class PipelineTimeout(RPCError):
    """-32011 ``pipeline_timeout``. ``.iteration``, ``.iteration_id`` and
    ``.stage`` (the last stage that finished) come from ``data``."""

    TYPES = ("pipeline_timeout",)
    CODE = -32011

    def _get(self, key: str) -> Any:
        return self.data.get(key) if isinstance(self.data, dict) else None

    @property
    def iteration(self) -> Any:
        return self._get("iteration")

    @property
    def iteration_id(self) -> Any:
        return self._get("iteration_id")

    @property
    def stage(self) -> Any:
        return self._get("stage")

    def _details(self) -> str:
        if self.stage is None and self.iteration is None:
            return ""
        return f"iteration {self.iteration}, last stage reached: {self.stage}"


class Forbidden(RPCError):
    """-32020 ``forbidden``: this user may not talk to the daemon (the daemon
    disconnects right after sending it)."""

    TYPES = ("forbidden",)
    CODE = -32020


class RateLimitedError(RPCError):
    """-32002 ``rate_limited``: over the daemon's ``--publish-rate`` (docs/PROTOCOL.md
    section 12); nothing was recorded.  ``.retry_after_ms`` (``data.retry_after_ms``,
    ``None`` when absent) says when a token is free again."""

    TYPES = ("rate_limited",)
    CODE = -32002

    @property
    def retry_after_ms(self) -> Optional[int]:
        v = self.data.get("retry_after_ms") if isinstance(self.data, dict) else None
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    def _details(self) -> str:
        ms = self.retry_after_ms
        return "" if ms is None else f"retry after {ms} ms"


class UnknownConsumerError(RPCError):
    """-32040 ``unknown_consumer``: ``ack``/``nak`` for a consumer this connection is
    not subscribed with (docs/PROTOCOL.md section 11)."""

    TYPES = ("unknown_consumer",)
    CODE = -32040


class DeadLetterNotFoundError(RPCError):
    """-32041 ``dead_letter_not_found``: ``retry_dead_letter`` with an id the daemon
    does not hold (docs/PROTOCOL.md section 11)."""

    TYPES = ("dead_letter_not_found",)
    CODE = -32041


_ALL_RPC: List[Type[RPCError]] = [
    ParseError,
    InvalidRequest,
    MessageTooLarge,
    BatchTooLarge,
    MethodNotFound,
    InvalidParams,
    InternalError,
    ShuttingDown,
    Overloaded,
    NoMarketData,
    PipelineTimeout,
    Forbidden,
    RateLimitedError,
    UnknownConsumerError,
    DeadLetterNotFoundError,
]
_BY_TYPE: Dict[str, Type[RPCError]] = {t: c for c in _ALL_RPC for t in c.TYPES}
_BY_CODE: Dict[int, Type[RPCError]] = {}
for _c in _ALL_RPC:
    if _c.CODE is not None and _c.CODE not in _BY_CODE:
        _BY_CODE[_c.CODE] = _c


def error_from_object(obj: Any, method: Optional[str] = None) -> RPCError:
    """Build the most specific :class:`RPCError` for a JSON-RPC error object.

    ``data.type`` decides; an unknown or missing type falls back to the code;
    an unknown code gives a plain :class:`RPCError`.
    """
    if not isinstance(obj, dict):
        return RPCError(-32603, f"malformed error object from daemon: {obj!r}", None, method=method)
    code = obj.get("code")
    if isinstance(code, bool) or not isinstance(code, int):
        try:
            code = int(code)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            code = -32603
    message = obj.get("message")
    if not isinstance(message, str):
        message = str(message)
    data = obj.get("data")
    t = data.get("type") if isinstance(data, dict) else None
    cls = _BY_TYPE.get(t) if isinstance(t, str) else None
    if cls is None:
        cls = _BY_CODE.get(code, RPCError)
    return cls(code, message, data, method=method)


# --------------------------------------------------------------------------
# Connection-level errors
# --------------------------------------------------------------------------


class NotConnected(TradewireError, ConnectionError):
    """No usable connection to the daemon (closed, never opened or lost)."""

    def __init__(self, message: str, socket_path: Optional[str] = None) -> None:
        super().__init__(message)
        self.socket_path = socket_path


class DaemonUnavailable(NotConnected):
    """The daemon's socket could not be reached.

    The message names the socket path and says how to start the daemon.
    ``.reason`` is the underlying OS error text.
    """

    def __init__(
        self,
        socket_path: str,
        reason: str = "",
        source: Optional[str] = None,
        *,
        message: Optional[str] = None,
    ) -> None:
        self.reason = reason
        self.source = source
        if message is None:
            msg = f"cannot connect to the tradewire daemon at {socket_path}"
            if reason:
                msg += f" ({reason})"
        else:
            msg = message
        msg += f"; {START_HINT}"
        if source:
            msg += f" [socket path from {source}]"
        super().__init__(msg, socket_path)


class ConnectionLost(NotConnected):
    """An open connection to the daemon closed (daemon stopped or restarted).

    ``.shutdown_reason`` is set when the daemon announced a graceful stop.
    """

    def __init__(
        self,
        message: str,
        socket_path: Optional[str] = None,
        shutdown_reason: Optional[str] = None,
    ) -> None:
        super().__init__(message, socket_path)
        self.shutdown_reason = shutdown_reason


class UntrustedSocket(NotConnected, ConnectionRefusedError):
    """The client refused to talk to what is at the socket path (nothing was sent).

    Also a builtin :class:`ConnectionRefusedError`.  ``.reason`` says what is
    wrong.  Subclasses: :class:`UnsafeSocketDirectory`, :class:`UntrustedPeer`.
    """

    def __init__(self, message: str, socket_path: Optional[str] = None, reason: str = "") -> None:
        super().__init__(message, socket_path)
        self.reason = reason


class UnsafeSocketDirectory(UntrustedSocket):
    """The default socket directory (``/tmp/tradewire-$UID``) is not one the
    daemon would have made: a symlink, not a directory, owned by another user,
    or not mode 0700.  Another user may have planted it.  ``.directory`` and
    ``.reason`` (e.g. ``"mode 0755, expected 0700"``)."""

    def __init__(self, directory: str, reason: str, socket_path: Optional[str] = None) -> None:
        self.directory = directory
        super().__init__(
            f"refusing {directory}: {reason} (the daemon's socket directory must be a real directory "
            f"owned by you with mode 0700; another user may have created it)",
            socket_path,
            reason,
        )


class UntrustedPeer(UntrustedSocket):
    """The server at the socket runs as another user (not us, not root): it is
    not our daemon.  The connection was closed before anything was sent.
    ``.peer_uid``, ``.peer_pid``, ``.peer_gid`` (``None`` when unknown)."""

    def __init__(
        self,
        socket_path: str,
        peer_uid: Optional[int],
        peer_pid: Optional[int],
        peer_gid: Optional[int],
        reason: str,
    ) -> None:
        self.peer_uid = peer_uid
        self.peer_pid = peer_pid
        self.peer_gid = peer_gid
        super().__init__(
            f"refusing {socket_path}: {reason}: it is not your tradewire daemon, nothing was sent",
            socket_path,
            reason,
        )


class Timeout(TradewireError, TimeoutError):
    """A client-side timeout expired before the daemon answered."""


class ProtocolError(TradewireError):
    """The daemon sent something that breaks the wire contract."""


class SubscriptionClosed(TradewireError):
    """The subscription has ended (daemon shutdown, unsubscribed or client closed)."""
