"""Remote pipeline stages (docs/PROTOCOL.md section 9): :class:`StageWorker`.

A stage worker is a client connection that serves a pipeline stage.  It sends
``register_stage`` for each declared stage; the daemon then sends it
``stage.handle`` *requests* on the same connection and waits for the replies::

    worker = tradewire.StageWorker()

    @worker.stage("risk", name="max-exposure", timeout_ms=500)
    def veto(call):
        return [tighten(s, call.account) for s in call.output]

    worker.run()            # blocks; worker.stop() from another thread / a signal handler

How it works:

* One reader thread (``run``) or reader task (``run_async``) reads the socket
  and dispatches every message: responses to the worker's own requests by
  ``id``, ``stage.handle`` requests by ``registration`` id to their handler,
  ``$/cancelRequest`` to the call it names.
* ``run()``: each registration has a pool of ``concurrency`` threads (default
  1).  ``run_async()``: ``async def`` handlers run as tasks, plain handlers in
  a thread pool; an :class:`asyncio.Semaphore` per registration bounds them.
* A handler's return value is the reply's ``result``.  An exception, or a
  value that is not JSON, becomes the error reply ``{"code": -32000,
  "message": "<ExceptionType>: <text>", "data": {"type": "handler_error"}}``
  (logged; the worker goes on).
* ``$/cancelRequest`` sets the call's :attr:`StageCall.cancelled` event (and
  cancels the task of an ``async`` handler); no reply is sent for a cancelled
  call.  A call whose connection went away is cancelled the same way.
* The connection dropped (daemon stopped or restarted): reconnect with
  backoff and register again.  A ``register_stage`` refused with a JSON-RPC
  error (bad options, ``stage_conflict``...) is raised from ``run()``;
  ``shutting_down``/``overloaded`` are retried.
* While a call is in flight its handler may use :attr:`StageCall.client`
  (``ping``, ``publish``, ``get_event_history``, ``call(method, params)``...)
  on the same connection.

Log messages go to the ``tradewire.stage`` logger.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
import math
import os
import re
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from . import _common as C
from .aio import AsyncClient
from .client import Client
from .errors import (
    ConnectionLost,
    DaemonUnavailable,
    NotConnected,
    RPCError,
    Timeout,
    UntrustedSocket,
    error_from_object,
)
from .paths import DEFAULT_SOURCE, check_peer, check_socket_dir, resolve_socket_path

__all__ = [
    "StageWorker",
    "StageCall",
    "StageSpec",
    "StageClient",
    "AsyncStageClient",
    "STAGES",
    "HANDLER_ERROR",
]

log = logging.getLogger("tradewire.stage")

#: the stages a connection may serve (docs/PROTOCOL.md section 9)
STAGES = ("data", "strategy", "quant", "risk", "execution")
MODES = ("after", "replace")
ON_FAILURE = ("skip", "fallback", "fail_closed")
MAX_CONCURRENCY = 1024
#: the JSON-RPC code of the error reply for a handler that raised
HANDLER_ERROR = -32000
#: the method of the daemon's calls
CALL_METHOD = "stage.handle"
CANCEL_METHOD = "$/cancelRequest"

#: ``register_stage`` errors that are worth retrying (the daemon is busy, not refusing)
_TRANSIENT = frozenset({"shutting_down", "overloaded", "rate_limited", "cluster_unavailable"})
_RECV = 256 * 1024
_DEFAULT: Any = object()

Handler = Callable[["StageCall"], Any]


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", re.IGNORECASE)


def parse_rfc3339(text: Any) -> Optional[datetime]:
    """An aware :class:`datetime` for an RFC 3339 time (any number of
    fractional digits, ``Z`` or an offset); ``None`` when ``text`` is not one."""
    if not isinstance(text, str):
        return None
    m = _RFC3339.match(text.strip())
    if not m:
        return None
    base, frac, zone = m.groups()
    frac = ((frac or "") + "000000")[:6]
    zone = "+00:00" if zone.upper() == "Z" else zone
    try:
        return datetime.fromisoformat(f"{base}.{frac}{zone}")
    except ValueError:
        return None


def _exc_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _error_line(rid: Any, code: int, message: str, type_: str, **extra: Any) -> bytes:
    data: Dict[str, Any] = {"type": type_}
    data.update(extra)
    return C.encode({"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message, "data": data}})


def _is_async_handler(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)
    return call is not None and inspect.iscoroutinefunction(call)


# --------------------------------------------------------------------------
# public objects
# --------------------------------------------------------------------------


class StageSpec:
    """One declared stage: what ``register_stage`` sends, and its handler."""

    def __init__(
        self,
        stage: str,
        name: str,
        handler: Handler,
        *,
        mode: Optional[str] = None,
        timeout_ms: Optional[int] = None,
        on_failure: Optional[str] = None,
        concurrency: Optional[int] = None,
        durable: Optional[bool] = None,
    ) -> None:
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}")
        if not isinstance(name, str) or not 1 <= len(name) <= 64:
            raise ValueError(f"stage name must be 1-64 characters; got {name!r}")
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if on_failure is not None and on_failure not in ON_FAILURE:
            raise ValueError(f"on_failure must be one of {', '.join(ON_FAILURE)}; got {on_failure!r}")
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY
        ):
            raise ValueError(f"concurrency must be an int from 1 to {MAX_CONCURRENCY}; got {concurrency!r}")
        if not callable(handler):
            raise TypeError(f"handler for {stage}/{name} is not callable")
        self.stage = stage
        self.name = name
        self.handler = handler
        self.mode = mode
        self.timeout_ms = timeout_ms
        self.on_failure = on_failure
        self.concurrency = concurrency
        self.durable = durable
        self.is_async = _is_async_handler(handler)

    @property
    def slots(self) -> int:
        """Calls of this stage this worker runs at once (the daemon's default is 1)."""
        return self.concurrency or 1

    def register_params(self) -> Dict[str, Any]:
        """``register_stage`` params: the options not given are left out."""
        return C.clean(
            stage=self.stage,
            name=self.name,
            mode=self.mode,
            timeout_ms=self.timeout_ms,
            on_failure=self.on_failure,
            concurrency=self.concurrency,
            durable=self.durable,
        )

    def __repr__(self) -> str:
        return f"<StageSpec {self.stage}/{self.name} {self.register_params()!r}>"


class StageCall:
    """One ``stage.handle`` call, passed to the handler.

    ``id`` (the daemon's request id, ``"c-…"``), ``registration``, ``stage``,
    ``name``, ``mode``, ``iteration``, ``iteration_id``, ``deadline`` (an
    aware :class:`datetime`, ``None`` if the daemon sent none), ``dry_run``,
    ``input``, ``output`` (``None`` for replace), ``account`` (risk and
    execution), ``params`` (everything the daemon sent), ``spec``.

    ``cancelled`` is a :class:`threading.Event`, set when the daemon cancels
    the call (its deadline passed or the iteration was abandoned) or the
    connection is lost; the reply is then discarded.  ``client`` makes
    requests on the worker's connection while the call is in flight: a
    :class:`StageClient`, or an :class:`AsyncStageClient` for ``async``
    handlers.
    """

    def __init__(self, rid: Any, params: Dict[str, Any], spec: StageSpec, client: Any) -> None:
        self.id = rid
        self.params = params
        self.spec = spec
        self.registration: Optional[str] = params.get("registration")
        self.stage: str = params.get("stage", spec.stage)
        self.name: str = params.get("name", spec.name)
        self.mode: Optional[str] = params.get("mode", spec.mode)
        self.iteration: Any = params.get("iteration")
        self.iteration_id: Any = params.get("iteration_id")
        self.deadline: Optional[datetime] = parse_rfc3339(params.get("deadline"))
        self.dry_run: bool = bool(params.get("dry_run", False))
        self.input: Any = params.get("input")
        self.output: Any = params.get("output")
        self.account: Any = params.get("account")
        self.cancelled = threading.Event()
        self.client = client
        self._task: Optional["asyncio.Task[Any]"] = None
        self._abandoned = False

    def time_left(self) -> float:
        """Seconds until the deadline (0.0 once passed; ``inf`` without a deadline)."""
        if self.deadline is None:
            return math.inf
        return max(0.0, (self.deadline - datetime.now(timezone.utc)).total_seconds())

    def _cancel(self) -> None:
        self.cancelled.set()
        task = self._task
        if task is not None and not task.done():
            task.cancel()

    def __repr__(self) -> str:
        return (
            f"<StageCall {self.id!r} {self.stage}/{self.name} iteration={self.iteration!r}"
            f"{' cancelled' if self.cancelled.is_set() else ''}>"
        )


class StageClient:
    """Blocking requests on a stage worker's connection (``call.client``).

    ``call(method, params, timeout=)`` plus the convenience methods of
    :class:`tradewire.Client` that need no subscription: ``ping``,
    ``get_status``, ``get_stats``, ``get_event_history``, ``publish``,
    ``run_pipeline``, ``start_loop``, ``stop_loop``, ``discover``.
    Subscriptions are not available here: open a :class:`tradewire.Client`.
    """

    def __init__(self, requester: Callable[[str, Any, Optional[float]], Any], notifier: Callable[[str, Any], None],
                 timeout: Optional[float]) -> None:
        self._requester = requester
        self._notifier = notifier
        self.timeout = timeout

    def call(self, method: str, params: Any = None, *, timeout: Any = _DEFAULT) -> Any:
        """Call ``method`` on the worker's connection; raises like :meth:`tradewire.Client.call`."""
        return self._requester(method, params, self.timeout if timeout is _DEFAULT else timeout)

    def notify(self, method: str, params: Any = None) -> None:
        self._notifier(method, params)

    # the same convenience methods as Client (they only use self.call and self.timeout)
    ping = Client.ping
    get_status = Client.get_status
    get_stats = Client.get_stats
    get_event_history = Client.get_event_history
    publish = Client.publish
    run_pipeline = Client.run_pipeline
    start_loop = Client.start_loop
    stop_loop = Client.stop_loop
    discover = Client.discover


class AsyncStageClient:
    """asyncio requests on a stage worker's connection (``call.client`` of an
    ``async`` handler): ``await call.client.ping()`` and the other methods of
    :class:`StageClient`."""

    def __init__(self, requester: Callable[[str, Any, Optional[float]], Awaitable[Any]],
                 notifier: Callable[[str, Any], None], timeout: Optional[float]) -> None:
        self._requester = requester
        self._notifier = notifier
        self.timeout = timeout

    async def call(self, method: str, params: Any = None, *, timeout: Any = _DEFAULT) -> Any:
        return await self._requester(method, params, self.timeout if timeout is _DEFAULT else timeout)

    def notify(self, method: str, params: Any = None) -> None:
        self._notifier(method, params)

    ping = AsyncClient.ping
    get_status = AsyncClient.get_status
    get_stats = AsyncClient.get_stats
    get_event_history = AsyncClient.get_event_history
    publish = AsyncClient.publish
    run_pipeline = AsyncClient.run_pipeline
    start_loop = AsyncClient.start_loop
    stop_loop = AsyncClient.stop_loop
    discover = AsyncClient.discover


# --------------------------------------------------------------------------
# connections
# --------------------------------------------------------------------------


class _Waiter:
    __slots__ = ("method", "on_result", "done", "response", "future")

    def __init__(self, method: str, on_result: Optional[Callable[[Any], None]]) -> None:
        self.method = method
        self.on_result = on_result
        self.done = threading.Event()
        self.response: Optional[Dict[str, Any]] = None
        self.future: Optional["asyncio.Future[Any]"] = None


class _Conn:
    """What the threaded and the asyncio connection share: message routing."""

    def __init__(self, worker: "StageWorker", path: str) -> None:
        self.worker = worker
        self.path = path
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: Dict[Any, _Waiter] = {}
        #: calls in flight, by the daemon's request id
        self.calls: Dict[Any, StageCall] = {}
        #: registration id -> spec
        self.regs: Dict[str, StageSpec] = {}
        self.results: List[Dict[str, Any]] = []
        self.ended = False
        #: every declared stage is registered on it
        self.ready = False
        self.reason = ""
        self.shutdown_reason: Optional[str] = None
        self.shutdown_at: Optional[float] = None
        self._rbuf = bytearray()
        self._scan = 0

    # to be provided by the subclasses
    def _send_now(self, data: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _launch(self, call: StageCall, spec: StageSpec) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _slot(self, reg: str, spec: StageSpec) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _resolve(self, waiter: _Waiter, msg: Optional[Dict[str, Any]]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _client_for(self, spec: StageSpec) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self, reason: str = "closed") -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def in_flight(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- framing

    def _feed(self, chunk: bytes) -> None:
        buf = self._rbuf
        buf += chunk
        start = 0
        while True:
            nl = buf.find(b"\n", max(start, self._scan))
            if nl < 0:
                break
            msg = C.decode(bytes(buf[start:nl]))
            start = nl + 1
            self._scan = start
            if msg is not C.MISSING:
                try:
                    self._dispatch(msg)
                except Exception:  # never let one bad message kill the connection
                    log.exception("tradewire stage: failed to handle a message: %.200r", msg)
        if start:
            del buf[:start]
        self._scan = len(buf)

    # -- routing

    def _bind(self, result: Any, spec: StageSpec) -> None:
        """A ``register_stage`` result arrived (runs in the reader, before any later message)."""
        reg = result.get("registration") if isinstance(result, dict) else None
        if not isinstance(reg, str):
            log.error("tradewire stage: register_stage answered without a registration id: %.200r", result)
            return
        with self.lock:
            self.regs[reg] = spec
            self.results.append(result)
            self._slot(reg, spec)

    def _dispatch(self, msg: Any) -> None:
        if isinstance(msg, list):
            for m in msg:
                self._dispatch(m)
            return
        if not isinstance(msg, dict):
            log.warning("tradewire stage: ignoring unexpected message: %.200r", msg)
            return
        method = msg.get("method")
        if isinstance(method, str):
            if "id" in msg:
                self._on_request(msg["id"], method, msg.get("params"))
            else:
                self._on_notification(method, msg.get("params"))
            return
        if C.is_response(msg):
            self._on_response(msg)
            return
        log.warning("tradewire stage: ignoring unexpected message: %.200r", msg)

    def _on_response(self, msg: Dict[str, Any]) -> None:
        rid = msg.get("id")
        with self.lock:
            w = self._pending.pop(rid, None) if rid is not None else None
            if w is None and rid is None and "error" in msg:
                live = [k for k in self._pending]
                if len(live) == 1:  # an id-null error can only be for that one
                    w = self._pending.pop(live[0])
        if w is None:
            if rid is None:
                log.warning("tradewire stage: daemon error with id null: %s", error_from_object(msg.get("error")))
            else:
                log.debug("tradewire stage: dropping a response for unknown id %r", rid)
            return
        if w.on_result is not None and "result" in msg:
            try:
                w.on_result(msg["result"])
            except Exception:
                log.exception("tradewire stage: handling the %s result failed", w.method)
        self._resolve(w, msg)

    def _on_request(self, rid: Any, method: str, params: Any) -> None:
        if method != CALL_METHOD:
            log.warning("tradewire stage: the daemon called unknown method %r", method)
            self._send_now(_error_line(rid, -32601, f"Method not found: {method}", "method_not_found"))
            return
        reg = params.get("registration") if isinstance(params, dict) else None
        with self.lock:
            spec = self.regs.get(reg) if isinstance(reg, str) else None
            duplicate = spec is not None and rid in self.calls
            call: Optional[StageCall] = None
            if spec is not None and not duplicate:
                assert isinstance(params, dict)
                call = StageCall(rid, params, spec, self._client_for(spec))
                self.calls[rid] = call
        if duplicate:
            log.warning("tradewire stage: ignoring a second call with id %r while the first is in flight", rid)
            return
        if call is None or spec is None:
            what = "params must be an object" if not isinstance(params, dict) else f"unknown registration: {reg!r}"
            log.warning("tradewire stage: refusing call %r: %s", rid, what)
            self._send_now(
                _error_line(rid, -32602, f"Invalid params: {what}", "invalid_params",
                            errors=[{"path": "/registration" if isinstance(params, dict) else "", "message": what}])
            )
            return
        log.debug("tradewire stage: call %s for %s/%s (iteration %s)", rid, spec.stage, spec.name, call.iteration)
        self._launch(call, spec)

    def _on_notification(self, method: str, params: Any) -> None:
        if method == CANCEL_METHOD:
            rid = params.get("id") if isinstance(params, dict) else None
            with self.lock:
                call = self.calls.pop(rid, None)
            if call is None:
                log.debug("tradewire stage: cancel for %r, which is not in flight", rid)
                return
            log.info("tradewire stage: call %s for %s/%s cancelled by the daemon", rid, call.stage, call.name)
            call._cancel()
            return
        if method == "shutdown":
            reason = params.get("reason") if isinstance(params, dict) else None
            self.shutdown_reason = "" if reason is None else str(reason)
            self.shutdown_at = time.monotonic()
            log.info("tradewire stage: the daemon is shutting down (%s)", self.shutdown_reason or "no reason given")
            self.worker._wake()
            return
        hook = self.worker.on_notification
        if hook is not None:
            try:
                hook(method, params)
            except Exception:
                log.exception("tradewire stage: on_notification failed for %r", method)
        else:
            log.debug("tradewire stage: ignoring notification %r", method)

    # -- replies

    def _reply_bytes(self, call: StageCall, value: Any = None, exc: Optional[BaseException] = None) -> bytes:
        spec = call.spec
        if exc is None:
            try:
                return C.encode({"jsonrpc": "2.0", "id": call.id, "result": value})
            except (TypeError, ValueError, RecursionError) as e:
                exc = e
                log.error("tradewire stage: %s/%s call %s returned a value that is not JSON: %s",
                          spec.stage, spec.name, call.id, _exc_text(e))
        else:
            log.error("tradewire stage: %s/%s handler failed on call %s", spec.stage, spec.name, call.id,
                      exc_info=(type(exc), exc, exc.__traceback__))
        return _error_line(call.id, HANDLER_ERROR, _exc_text(exc), "handler_error")

    def _claim(self, call: StageCall) -> bool:
        """True when the reply for ``call`` is to be sent (not cancelled, connection alive)."""
        with self.lock:
            mine = self.calls.get(call.id) is call
            if mine:
                del self.calls[call.id]
            return mine and not (call.cancelled.is_set() or call._abandoned or self.ended)

    def _abandon_all(self) -> Tuple[List[_Waiter], List[StageCall]]:
        """Mark ended; return the waiters and calls to fail (lock held by caller)."""
        self.ended = True
        waiters = list(self._pending.values())
        self._pending.clear()
        calls = list(self.calls.values())
        self.calls.clear()
        for c in calls:
            c._abandoned = True
        return waiters, calls

    def _lost_error(self) -> ConnectionLost:
        msg = f"connection to the tradewire daemon at {self.path} closed"
        if self.shutdown_reason is not None:
            msg += f" (daemon shutdown: {self.shutdown_reason})"
        elif self.reason:
            msg += f" ({self.reason})"
        return ConnectionLost(msg, self.path, self.shutdown_reason)


def _connect_socket(path: str, source: str, timeout: Optional[float]) -> socket.socket:
    """Connect with the checks of :class:`tradewire.Client` (directory, peer credentials)."""
    if source == DEFAULT_SOURCE:
        check_socket_dir(os.path.dirname(path), path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(path)
        s.settimeout(None)
    except (OSError, ValueError) as e:
        s.close()
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise DaemonUnavailable(path, reason, source) from None
    try:
        check_peer(s, path)
    except BaseException:
        s.close()
        raise
    return s


class _SyncConn(_Conn):
    """Threaded connection: one reader thread, a write lock, a pending map."""

    def __init__(self, worker: "StageWorker", sock: socket.socket, path: str) -> None:
        super().__init__(worker, path)
        self.sock = sock
        self._wlock = threading.Lock()
        self.closed = threading.Event()
        self.pools: Dict[str, ThreadPoolExecutor] = {}
        self.client = StageClient(self.request, self.notify, worker.timeout)
        self._reader = threading.Thread(target=self._read_loop, name="tradewire-stage-reader", daemon=True)

    def start(self) -> None:
        self._reader.start()

    def _client_for(self, spec: StageSpec) -> Any:
        return self.client

    def _slot(self, reg: str, spec: StageSpec) -> None:
        self.pools[reg] = ThreadPoolExecutor(max_workers=spec.slots, thread_name_prefix=f"tradewire-stage-{spec.name}")

    def _resolve(self, waiter: _Waiter, msg: Optional[Dict[str, Any]]) -> None:
        waiter.response = msg
        waiter.done.set()

    def _write(self, data: bytes) -> None:
        try:
            with self._wlock:
                self.sock.sendall(data)
        except OSError as e:
            self.close(e.strerror or str(e))
            raise self._lost_error() from None

    def _send_now(self, data: bytes) -> None:
        try:
            self._write(data)
        except NotConnected:
            pass

    def request(self, method: str, params: Any = None, timeout: Optional[float] = None,
                on_result: Optional[Callable[[Any], None]] = None) -> Any:
        rid = next(self._ids)
        msg: Dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        data = C.encode(msg)
        w = _Waiter(method, on_result)
        with self.lock:
            if self.ended:
                raise self._lost_error()
            self._pending[rid] = w
        try:
            self._write(data)
            if not w.done.wait(timeout):
                raise Timeout(f"{method}: no answer from the daemon at {self.path} within {timeout} s")
        finally:
            with self.lock:
                self._pending.pop(rid, None)
        resp = w.response
        if resp is None:
            raise self._lost_error()
        if "error" in resp:
            raise error_from_object(resp["error"], method)
        return resp.get("result")

    def notify(self, method: str, params: Any = None) -> None:
        msg: Dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self._write(C.encode(msg))

    def _read_loop(self) -> None:
        reason = "the daemon closed the connection"
        try:
            while True:
                chunk = self.sock.recv(_RECV)
                if not chunk:
                    break
                self._feed(chunk)
        except OSError as e:
            reason = e.strerror or str(e)
        except Exception as e:  # pragma: no cover - a bug
            log.exception("tradewire stage: reader failed")
            reason = _exc_text(e)
        finally:
            self.close(reason)
            try:
                self.sock.close()
            except OSError:
                pass

    def _launch(self, call: StageCall, spec: StageSpec) -> None:
        pool = self.pools.get(call.registration or "")
        try:
            if pool is None:
                raise RuntimeError("no pool")
            pool.submit(self._run_call, call, spec)
        except RuntimeError:  # the connection is ending
            with self.lock:
                self.calls.pop(call.id, None)
            call._abandoned = True
            call.cancelled.set()

    def _run_call(self, call: StageCall, spec: StageSpec) -> None:
        if call.cancelled.is_set():
            return  # cancelled while it waited for a free slot
        try:
            value = spec.handler(call)
        except Exception as e:
            data = self._reply_bytes(call, exc=e)
        else:
            data = self._reply_bytes(call, value)
        if self._claim(call):
            self._send_now(data)
        else:
            log.info("tradewire stage: %s/%s call %s finished after it was cancelled; no reply sent",
                     spec.stage, spec.name, call.id)

    def close(self, reason: str = "closed") -> None:
        with self.lock:
            if self.ended:
                return
            self.reason = reason
            waiters, calls = self._abandon_all()
            pools = list(self.pools.values())
        for w in waiters:
            self._resolve(w, None)
        for c in calls:
            c._cancel()
        for p in pools:
            p.shutdown(wait=False, cancel_futures=True)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if calls:
            log.warning("tradewire stage: connection closed (%s); %d call(s) in flight abandoned", reason, len(calls))
        self.closed.set()
        self.worker._wake()

    def in_flight(self) -> int:
        with self.lock:
            return len(self.calls)


class _AsyncConn(_Conn):
    """asyncio connection: one reader task; async handlers are tasks, sync ones run in a pool."""

    def __init__(self, worker: "StageWorker", reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 path: str) -> None:
        super().__init__(worker, path)
        self.reader = reader
        self.writer = writer
        self.loop = asyncio.get_running_loop()
        self.closed = asyncio.Event()
        self.sems: Dict[str, asyncio.Semaphore] = {}
        self.pool: Optional[ThreadPoolExecutor] = None
        self.tasks: "set[asyncio.Task[Any]]" = set()
        self.aclient = AsyncStageClient(self.request, self.notify, worker.timeout)
        self.sclient = StageClient(self._request_threadsafe, self._notify_threadsafe, worker.timeout)
        self._read_task: Optional["asyncio.Task[None]"] = None

    @classmethod
    async def open(cls, worker: "StageWorker") -> "_AsyncConn":
        path, source = worker.socket_path, worker.socket_source
        if source == DEFAULT_SOURCE:
            check_socket_dir(os.path.dirname(path), path)
        try:
            coro = asyncio.open_unix_connection(path)
            if worker.connect_timeout is not None:
                reader, writer = await asyncio.wait_for(coro, worker.connect_timeout)
            else:
                reader, writer = await coro
        except asyncio.TimeoutError:
            raise DaemonUnavailable(path, "connect timed out", source) from None
        except (OSError, ValueError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise DaemonUnavailable(path, reason, source) from None
        try:
            check_peer(writer.get_extra_info("socket"), path)
        except BaseException:
            writer.close()
            raise
        return cls(worker, reader, writer, path)

    def start(self) -> None:
        self._read_task = self.loop.create_task(self._read_loop())

    def _client_for(self, spec: StageSpec) -> Any:
        return self.aclient if spec.is_async else self.sclient

    def _slot(self, reg: str, spec: StageSpec) -> None:
        self.sems[reg] = asyncio.Semaphore(spec.slots)

    def _resolve(self, waiter: _Waiter, msg: Optional[Dict[str, Any]]) -> None:
        fut = waiter.future
        if fut is not None and not fut.done():
            fut.set_result(msg)

    def _send_now(self, data: bytes) -> None:
        if self.ended:
            return
        try:
            self.writer.write(data)
        except (OSError, RuntimeError) as e:
            self.close(str(e))

    async def _send(self, data: bytes) -> None:
        if self.ended:
            raise self._lost_error()
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (OSError, ConnectionError, RuntimeError) as e:
            self.close(str(e))
            raise self._lost_error() from None

    async def request(self, method: str, params: Any = None, timeout: Optional[float] = None,
                      on_result: Optional[Callable[[Any], None]] = None) -> Any:
        rid = next(self._ids)
        msg: Dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        data = C.encode(msg)
        w = _Waiter(method, on_result)
        w.future = self.loop.create_future()
        with self.lock:
            if self.ended:
                raise self._lost_error()
            self._pending[rid] = w
        try:
            await self._send(data)
            try:
                resp = await asyncio.wait_for(asyncio.shield(w.future), timeout)
            except asyncio.TimeoutError:
                raise Timeout(f"{method}: no answer from the daemon at {self.path} within {timeout} s") from None
        finally:
            with self.lock:
                self._pending.pop(rid, None)
        if resp is None:
            raise self._lost_error()
        if "error" in resp:
            raise error_from_object(resp["error"], method)
        return resp.get("result")

    def notify(self, method: str, params: Any = None) -> None:
        msg: Dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        if self.ended:
            raise self._lost_error()
        self._send_now(C.encode(msg))

    def _in_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def _request_threadsafe(self, method: str, params: Any, timeout: Optional[float]) -> Any:
        if self._in_loop_thread():
            raise RuntimeError("a blocking call.client call from the event loop would deadlock; use an async handler")
        fut = asyncio.run_coroutine_threadsafe(self.request(method, params, timeout), self.loop)
        return fut.result()

    def _notify_threadsafe(self, method: str, params: Any) -> None:
        if self._in_loop_thread():
            self.notify(method, params)
            return
        asyncio.run_coroutine_threadsafe(self._anotify(method, params), self.loop).result()

    async def _anotify(self, method: str, params: Any) -> None:
        self.notify(method, params)

    async def _read_loop(self) -> None:
        reason = "the daemon closed the connection"
        try:
            while True:
                chunk = await self.reader.read(_RECV)
                if not chunk:
                    break
                self._feed(chunk)
        except asyncio.CancelledError:
            reason = "closed"
        except (OSError, ConnectionError) as e:
            reason = str(e) or type(e).__name__
        except Exception as e:  # pragma: no cover - a bug
            log.exception("tradewire stage: reader failed")
            reason = _exc_text(e)
        finally:
            self.close(reason)

    def _launch(self, call: StageCall, spec: StageSpec) -> None:
        task = self.loop.create_task(self._run_call(call, spec))
        call._task = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _executor(self) -> ThreadPoolExecutor:
        if self.pool is None:
            n = sum(s.slots for s in self.regs.values() if not s.is_async) or 1
            self.pool = ThreadPoolExecutor(max_workers=min(n, 256), thread_name_prefix="tradewire-stage")
        return self.pool

    async def _run_call(self, call: StageCall, spec: StageSpec) -> None:
        sem = self.sems.get(call.registration or "")
        data: Optional[bytes] = None
        try:
            if sem is None:
                return
            async with sem:
                if call.cancelled.is_set():
                    return
                try:
                    if spec.is_async:
                        value = await spec.handler(call)
                    else:
                        value = await self.loop.run_in_executor(self._executor(), spec.handler, call)
                        if inspect.isawaitable(value):
                            value = await value
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    data = self._reply_bytes(call, exc=e)
                else:
                    data = self._reply_bytes(call, value)
        except asyncio.CancelledError:
            call.cancelled.set()
            log.info("tradewire stage: %s/%s call %s cancelled; no reply sent", spec.stage, spec.name, call.id)
            return
        if data is not None and self._claim(call):
            try:
                await self._send(data)
            except NotConnected:
                pass

    def close(self, reason: str = "closed") -> None:
        with self.lock:
            if self.ended:
                return
            self.reason = reason
            waiters, calls = self._abandon_all()
        for w in waiters:
            self._resolve(w, None)
        for c in calls:
            c._cancel()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        try:
            self.writer.close()
        except (OSError, RuntimeError):
            pass
        task = self._read_task
        if task is not None and not task.done() and asyncio.current_task() is not task:
            task.cancel()
        if calls:
            log.warning("tradewire stage: connection closed (%s); %d call(s) in flight abandoned", reason, len(calls))
        self.closed.set()

    def in_flight(self) -> int:
        return len(self.calls)


# --------------------------------------------------------------------------
# the worker
# --------------------------------------------------------------------------


class StageWorker:
    """Serve pipeline stages for the daemon (docs/PROTOCOL.md section 9).

    ``socket_path``: as for :class:`tradewire.Client` (explicit,
    ``$TRADEWIRE_SOCKET``, ``$XDG_RUNTIME_DIR/tradewire.sock``,
    ``/tmp/tradewire-$UID/tradewire.sock``), with the same trust checks.

    * ``reconnect_delay`` / ``max_reconnect_delay``: the backoff after a lost
      or failed connection (doubling from the first to the second).
    * ``timeout``: seconds to wait for the answer to each request the worker
      makes (``register_stage``, and ``call.client`` requests by default).
    * ``stop_grace``: on :meth:`stop`, how long calls in flight may still
      finish and reply before the connection is closed.
    * ``shutdown_grace``: after the daemon's ``shutdown`` notification the
      worker keeps serving (a running iteration may still call it) until the
      daemon closes the connection, or this many seconds.
    * ``on_connect(results)``: called after each successful registration
      with the ``register_stage`` results (in declaration order).
    * ``on_notification(method, params)``: notifications other than
      ``$/cancelRequest`` and ``shutdown`` (``event``, ``events_dropped``...).
    """

    def __init__(
        self,
        socket_path: Optional[str] = None,
        *,
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 5.0,
        timeout: Optional[float] = 30.0,
        connect_timeout: Optional[float] = 5.0,
        stop_grace: float = 5.0,
        shutdown_grace: float = 15.0,
        on_connect: Optional[Callable[[List[Dict[str, Any]]], Any]] = None,
        on_notification: Optional[Callable[[str, Any], Any]] = None,
    ) -> None:
        self.socket_path, self.socket_source = resolve_socket_path(socket_path)
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.stop_grace = stop_grace
        self.shutdown_grace = shutdown_grace
        self.on_connect = on_connect
        self.on_notification = on_notification
        self.specs: List[StageSpec] = []
        self._stop_flag = False
        self._running = False
        self._wake_w: Optional[int] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._astop: Optional[asyncio.Event] = None
        self._conn: Optional[_Conn] = None

    # ------------------------------------------------------------ declaring

    def stage(
        self,
        stage: str,
        name: Optional[str] = None,
        *,
        mode: Optional[str] = None,
        timeout_ms: Optional[int] = None,
        on_failure: Optional[str] = None,
        concurrency: Optional[int] = None,
        durable: Optional[bool] = None,
    ) -> Callable[[Handler], Handler]:
        """Decorator: serve ``stage`` as group ``name`` (default: the function's name)
        with ``handler(call)``.  Options not given are not sent (the daemon's
        defaults, or an existing group's options, apply)."""

        def decorate(fn: Handler) -> Handler:
            self.add_stage(stage, fn, name=name or getattr(fn, "__name__", None), mode=mode, timeout_ms=timeout_ms,
                           on_failure=on_failure, concurrency=concurrency, durable=durable)
            return fn

        return decorate

    def add_stage(
        self,
        stage: str,
        handler: Handler,
        *,
        name: Optional[str],
        mode: Optional[str] = None,
        timeout_ms: Optional[int] = None,
        on_failure: Optional[str] = None,
        concurrency: Optional[int] = None,
        durable: Optional[bool] = None,
    ) -> StageSpec:
        """Declare a stage without the decorator; returns its :class:`StageSpec`."""
        if self._running:
            raise RuntimeError("declare stages before run() / run_async()")
        spec = StageSpec(stage, name or "", handler, mode=mode, timeout_ms=timeout_ms, on_failure=on_failure,
                         concurrency=concurrency, durable=durable)
        if any(s.stage == spec.stage and s.name == spec.name for s in self.specs):
            raise ValueError(f"stage {stage}/{spec.name} is already declared on this worker")
        self.specs.append(spec)
        return spec

    # ------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        """True while every declared stage is registered on a live connection."""
        c = self._conn
        return c is not None and c.ready and not c.ended

    @property
    def registrations(self) -> Dict[str, StageSpec]:
        """``{registration id: spec}`` of the current connection (empty when not connected)."""
        c = self._conn
        if c is None or c.ended:
            return {}
        with c.lock:
            return dict(c.regs)

    def __repr__(self) -> str:
        names = ", ".join(f"{s.stage}/{s.name}" for s in self.specs)
        return f"<tradewire.StageWorker {self.socket_path!r} [{names}]{' connected' if self.connected else ''}>"

    # ------------------------------------------------------------ stopping

    def stop(self) -> None:
        """Make :meth:`run` / :meth:`run_async` unregister, close and return.

        Safe from another thread and from a signal handler (it only sets a
        flag and writes a byte to a pipe / schedules a wake-up).
        """
        self._stop_flag = True
        self._wake()
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._async_wake)
            except RuntimeError:  # loop closed
                pass

    def _wake(self) -> None:
        w = self._wake_w
        if w is not None:
            try:
                os.write(w, b"x")
            except OSError:
                pass

    def _async_wake(self) -> None:
        ev = self._astop
        if ev is not None and self._stop_flag:
            ev.set()

    def _check_specs(self, need_sync: bool) -> None:
        if not self.specs:
            raise ValueError("no stage declared: use @worker.stage(...) or worker.add_stage(...) first")
        if need_sync:
            bad = [f"{s.stage}/{s.name}" for s in self.specs if s.is_async]
            if bad:
                raise TypeError(f"async handlers ({', '.join(bad)}) need run_async(), not run()")

    def _next_delay(self, delay: float) -> float:
        return min(max(delay, 0.01) * 2, self.max_reconnect_delay)

    def _registered(self, conn: _Conn) -> None:
        conn.ready = True
        with conn.lock:
            results = list(conn.results)
        log.info("tradewire stage: registered %s on %s",
                 ", ".join(f"{r.get('stage')}/{r.get('name')} as {r.get('registration')}" for r in results),
                 self.socket_path)
        if self.on_connect is not None:
            self.on_connect(results)

    # ------------------------------------------------------------ threads

    def run(self) -> None:
        """Connect, register, serve calls; reconnect when the connection drops.

        Returns after :meth:`stop`.  Raises the :class:`~tradewire.RPCError` of
        a ``register_stage`` the daemon refused, and
        :class:`~tradewire.UntrustedSocket` for a socket that is not your
        daemon's.
        """
        self._check_specs(need_sync=True)
        if self._running:
            raise RuntimeError("this StageWorker is already running")
        self._running = True
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._wake_w = w
        delay = self.reconnect_delay
        failures = 0
        try:
            while not self._stop_flag:
                try:
                    sock = _connect_socket(self.socket_path, self.socket_source, self.connect_timeout)
                except UntrustedSocket:
                    raise
                except NotConnected as e:
                    failures += 1
                    (log.warning if failures == 1 else log.debug)(
                        "tradewire stage: %s; retrying (backoff up to %.1f s)", e, self.max_reconnect_delay)
                    self._sleep(r, delay)
                    delay = self._next_delay(delay)
                    continue
                conn = _SyncConn(self, sock, self.socket_path)
                self._conn = conn
                conn.start()
                try:
                    ok = self._register_sync(conn)
                except BaseException:
                    conn.close("registration refused")
                    raise
                if not ok:
                    conn.close("registration failed")
                    if self._stop_flag:
                        break
                    self._sleep(r, delay)
                    delay = self._next_delay(delay)
                    continue
                delay = self.reconnect_delay
                failures = 0
                self._registered(conn)
                self._serve_sync(conn, r)
                if self._stop_flag:
                    break
                log.warning("tradewire stage: disconnected from %s (%s); reconnecting", self.socket_path,
                            conn.reason or "closed")
                self._sleep(r, delay)
                delay = self._next_delay(delay)
        finally:
            conn_ = self._conn
            if conn_ is not None:
                conn_.close("stopped")
            self._conn = None
            self._wake_w = None
            os.close(w)
            os.close(r)
            self._running = False
            self._stop_flag = False

    def _sleep(self, r: int, seconds: Optional[float]) -> None:
        """Wait up to ``seconds`` or until woken (stop, connection end)."""
        if self._stop_flag:
            return
        try:
            select.select([r], [], [], seconds)
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            pass
        try:
            while os.read(r, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _register_sync(self, conn: _SyncConn) -> bool:
        """Register every spec: True when done, False for a retryable failure."""
        for spec in self.specs:
            if self._stop_flag:
                return False
            try:
                conn.request("register_stage", spec.register_params(), self.timeout,
                             on_result=functools.partial(conn._bind, spec=spec))
            except RPCError as e:
                if e.type in _TRANSIENT:
                    log.warning("tradewire stage: register_stage %s/%s: %s; retrying", spec.stage, spec.name, e)
                    return False
                log.error("tradewire stage: register_stage %s/%s refused: %s", spec.stage, spec.name, e)
                raise
            except (NotConnected, Timeout) as e:
                log.warning("tradewire stage: register_stage %s/%s: %s; retrying", spec.stage, spec.name, e)
                return False
        return not conn.ended

    def _serve_sync(self, conn: _SyncConn, r: int) -> None:
        """Wait until the connection ends (reconnect) or stop() (unregister, drain, close)."""
        while True:
            if self._stop_flag:
                self._stop_sync(conn)
                return
            if conn.closed.is_set():
                return
            wait = 1.0
            if conn.shutdown_at is not None:
                left = conn.shutdown_at + self.shutdown_grace - time.monotonic()
                if left <= 0:
                    conn.close("the daemon announced a shutdown and did not close the connection")
                    return
                wait = min(wait, left)
            self._sleep(r, wait)

    def _unregister_params(self, conn: _Conn) -> List[Dict[str, Any]]:
        # durable groups are left in place: closing the connection keeps them
        # (their calls then fail closed), an unregister might remove them
        with conn.lock:
            return [{"registration": reg} for reg, spec in conn.regs.items() if not spec.durable]

    def _stop_sync(self, conn: _SyncConn) -> None:
        for params in self._unregister_params(conn):
            try:
                conn.request("unregister_stage", params, min(self.timeout or 2.0, 2.0))
            except (RPCError, NotConnected, Timeout) as e:
                log.debug("tradewire stage: unregister_stage %s: %s", params, e)
        deadline = time.monotonic() + max(0.0, self.stop_grace)
        while conn.in_flight() and not conn.ended and time.monotonic() < deadline:
            time.sleep(0.01)
        conn.close("stopped")
        log.info("tradewire stage: stopped")

    # ------------------------------------------------------------ asyncio

    async def run_async(self) -> None:
        """:meth:`run` for asyncio: ``async def`` handlers run as tasks on the
        running loop, plain handlers in a thread pool.  Returns after
        :meth:`stop`; cancelling it closes the connection."""
        self._check_specs(need_sync=False)
        if self._running:
            raise RuntimeError("this StageWorker is already running")
        self._running = True
        self._astop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._stop_flag:
            self._astop.set()
        delay = self.reconnect_delay
        failures = 0
        try:
            while not self._stop_flag:
                try:
                    conn = await _AsyncConn.open(self)
                except UntrustedSocket:
                    raise
                except NotConnected as e:
                    failures += 1
                    (log.warning if failures == 1 else log.debug)(
                        "tradewire stage: %s; retrying (backoff up to %.1f s)", e, self.max_reconnect_delay)
                    await self._asleep(delay)
                    delay = self._next_delay(delay)
                    continue
                self._conn = conn
                conn.start()
                try:
                    ok = await self._register_async(conn)
                except BaseException:
                    conn.close("registration refused")
                    raise
                if not ok:
                    conn.close("registration failed")
                    if self._stop_flag:
                        break
                    await self._asleep(delay)
                    delay = self._next_delay(delay)
                    continue
                delay = self.reconnect_delay
                failures = 0
                self._registered(conn)
                await self._serve_async(conn)
                if self._stop_flag:
                    break
                log.warning("tradewire stage: disconnected from %s (%s); reconnecting", self.socket_path,
                            conn.reason or "closed")
                await self._asleep(delay)
                delay = self._next_delay(delay)
        finally:
            conn_ = self._conn
            if conn_ is not None:
                conn_.close("stopped")
            self._conn = None
            self._loop = None
            self._astop = None
            self._running = False
            self._stop_flag = False

    async def _asleep(self, seconds: float) -> None:
        ev = self._astop
        if ev is None or ev.is_set():
            return
        try:
            await asyncio.wait_for(ev.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _register_async(self, conn: _AsyncConn) -> bool:
        for spec in self.specs:
            if self._stop_flag:
                return False
            try:
                await conn.request("register_stage", spec.register_params(), self.timeout,
                                   on_result=functools.partial(conn._bind, spec=spec))
            except RPCError as e:
                if e.type in _TRANSIENT:
                    log.warning("tradewire stage: register_stage %s/%s: %s; retrying", spec.stage, spec.name, e)
                    return False
                log.error("tradewire stage: register_stage %s/%s refused: %s", spec.stage, spec.name, e)
                raise
            except (NotConnected, Timeout) as e:
                log.warning("tradewire stage: register_stage %s/%s: %s; retrying", spec.stage, spec.name, e)
                return False
        return not conn.ended

    async def _serve_async(self, conn: _AsyncConn) -> None:
        assert self._astop is not None
        stop_task = asyncio.ensure_future(self._astop.wait())
        closed_task = asyncio.ensure_future(conn.closed.wait())
        try:
            while True:
                if self._stop_flag:
                    await self._stop_async(conn)
                    return
                if conn.closed.is_set():
                    return
                wait = 1.0
                if conn.shutdown_at is not None:
                    left = conn.shutdown_at + self.shutdown_grace - time.monotonic()
                    if left <= 0:
                        conn.close("the daemon announced a shutdown and did not close the connection")
                        return
                    wait = min(wait, left)
                await asyncio.wait({stop_task, closed_task}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (stop_task, closed_task):
                if not t.done():
                    t.cancel()

    async def _stop_async(self, conn: _AsyncConn) -> None:
        for params in self._unregister_params(conn):
            try:
                await conn.request("unregister_stage", params, min(self.timeout or 2.0, 2.0))
            except (RPCError, NotConnected, Timeout) as e:
                log.debug("tradewire stage: unregister_stage %s: %s", params, e)
        deadline = time.monotonic() + max(0.0, self.stop_grace)
        while conn.in_flight() and not conn.ended and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        conn.close("stopped")
        log.info("tradewire stage: stopped")

