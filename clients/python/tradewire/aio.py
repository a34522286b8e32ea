"""asyncio client: :class:`AsyncClient`, :class:`AsyncSubscription` and the durable
:class:`AsyncConsumer` (with :class:`AsyncDelivery`).

One reader task per connection dispatches every message: responses resolve
the future of their ``id``, notifications go to the buffer of their
subscription.
"""
from __future__ import annotations

import asyncio
import inspect
import itertools
import os
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Set

from . import _common as C
from .consumer import ConsumerBase, DeliveryBase, _Spec
from .errors import (
    ConnectionLost,
    DaemonUnavailable,
    Forbidden,
    NotConnected,
    ProtocolError,
    RPCError,
    SubscriptionClosed,
    Timeout,
    error_from_object,
)
from .events import Event, EventsDropped
from .paths import DEFAULT_SOURCE, check_peer, check_socket_dir, resolve_socket_path

__all__ = ["AsyncClient", "AsyncSubscription", "AsyncConsumer", "AsyncDelivery", "DEFAULT_LIMIT"]

_DEFAULT: Any = object()

#: StreamReader buffer limit: the daemon's default max message (1 MiB) plus margin
DEFAULT_LIMIT = C.DEFAULT_MAX_MESSAGE + C.MESSAGE_MARGIN
#: the largest ``limit`` accepted: the daemon's largest max message (64 MiB) plus margin
MAX_LIMIT = C.MAX_MAX_MESSAGE + C.MESSAGE_MARGIN


class AsyncClient:
    """An asyncio connection to the tradewire daemon.

    >>> async with AsyncClient() as c:
    ...     await c.ping()

    ``limit`` is the ``asyncio`` StreamReader limit passed to
    :func:`asyncio.open_unix_connection`: by default the daemon's default max
    message (1 MiB) plus a margin for the envelope; raise it (up to 64 MiB plus
    margin) when the daemon runs with a larger ``--max-message-bytes``.  A
    line longer than ``limit`` (a large ``get_event_history`` answer, say) is
    still read, in pieces.  ``timeout`` and ``socket_path`` work as for
    :class:`tradewire.Client`.
    """

    def __init__(
        self,
        socket_path: Optional[str] = None,
        *,
        timeout: Optional[float] = C.DEFAULT_TIMEOUT,
        connect_timeout: Optional[float] = 5.0,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        if not isinstance(limit, int) or limit < 1024 or limit > MAX_LIMIT:
            raise ValueError(f"limit must be an int between 1024 and {MAX_LIMIT} (64 MiB + margin)")
        self.socket_path, self.socket_source = resolve_socket_path(socket_path)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.limit = limit
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._read_task: Optional["asyncio.Task[None]"] = None
        self._wlock: Optional[asyncio.Lock] = None
        self._ids = itertools.count(1)
        self._closed = True
        self._reset_state()

    def _reset_state(self) -> None:
        self._pending: Dict[Any, "asyncio.Future[Dict[str, Any]]"] = {}
        self._abandoned: Set[Any] = set()
        self._routes: Dict[str, List[C.SubCore]] = {}
        self._orphans: Dict[str, Deque[Any]] = {}
        self._dead_ids: Set[str] = set()
        self._cores: List[C.SubCore] = []
        self._wakers: Dict[int, Callable[[], None]] = {}
        self._fatal: Optional[BaseException] = None
        #: the ``reason`` of the daemon's ``shutdown`` notification, once received
        self.shutdown_reason: Optional[str] = None

    # ------------------------------------------------------------ lifecycle

    @classmethod
    async def open(cls, socket_path: Optional[str] = None, **kwargs: Any) -> "AsyncClient":
        """Create and connect: ``c = await AsyncClient.open()``."""
        c = cls(socket_path, **kwargs)
        await c.connect()
        return c

    @property
    def connected(self) -> bool:
        return not self._closed and self._fatal is None

    async def connect(self) -> "AsyncClient":
        """Open the connection (again).

        Raises :class:`DaemonUnavailable`, or an :class:`~tradewire.UntrustedSocket`
        (nothing sent) when the socket directory or the server is not trusted
        (the checks of :class:`tradewire.Client`).
        """
        if self._writer is not None:
            await self.close()
        if self.socket_source == DEFAULT_SOURCE:
            check_socket_dir(os.path.dirname(self.socket_path), self.socket_path)
        try:
            coro = asyncio.open_unix_connection(self.socket_path, limit=self.limit)
            if self.connect_timeout is not None:
                reader, writer = await asyncio.wait_for(coro, self.connect_timeout)
            else:
                reader, writer = await coro
        except asyncio.TimeoutError:
            raise DaemonUnavailable(self.socket_path, "connect timed out", self.socket_source) from None
        except (OSError, ValueError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise DaemonUnavailable(self.socket_path, reason, self.socket_source) from None
        try:
            check_peer(writer.get_extra_info("socket"), self.socket_path)
        except BaseException:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ConnectionError):
                pass
            raise
        self._reset_state()
        self._reader, self._writer = reader, writer
        self._wlock = asyncio.Lock()
        self._closed = False
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop())
        return self

    async def close(self) -> None:
        """Close the connection; open subscriptions end.  Idempotent."""
        self._closed = True
        for core in self._cores:
            core.end("client closed")
        self._wake_all()
        task, self._read_task = self._read_task, None
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ConnectionError):
                pass
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._fail_pending()

    async def __aenter__(self) -> "AsyncClient":
        if self._closed:
            await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed"
        return f"<tradewire.AsyncClient {self.socket_path!r} {state}>"

    # ------------------------------------------------------------ internals

    def _dead_error(self) -> BaseException:
        if self._closed:
            return NotConnected(f"client for {self.socket_path} is closed", self.socket_path)
        f = self._fatal
        if isinstance(f, ConnectionLost):
            return ConnectionLost(str(f), f.socket_path, f.shutdown_reason)
        if isinstance(f, Forbidden):
            return error_from_object(f.to_dict(), f.method)
        return f if f is not None else NotConnected("not connected", self.socket_path)

    def _wake_all(self) -> None:
        for w in list(self._wakers.values()):
            w()

    def _fail_pending(self) -> None:
        for fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(self._dead_error())
        self._pending.clear()

    def _lost(self, why: str) -> None:
        if self._fatal is None:
            msg = f"connection to the tradewire daemon at {self.socket_path} closed"
            if self.shutdown_reason is not None:
                msg += f" (daemon shutdown: {self.shutdown_reason})"
            elif why:
                msg += f" ({why})"
            self._fatal = ConnectionLost(msg, self.socket_path, self.shutdown_reason)
        self._fail_pending()
        self._wake_all()

    async def _readline(self) -> Optional[bytes]:
        """One line without its newline, or ``None`` at end of stream."""
        reader = self._reader
        assert reader is not None
        parts: List[bytes] = []
        while True:
            try:
                parts.append(await reader.readuntil(b"\n"))
                break
            except asyncio.IncompleteReadError:
                return None  # EOF (an unterminated last line is dropped)
            except asyncio.LimitOverrunError as e:
                # longer than `limit`: take what is buffered and keep going
                parts.append(await reader.readexactly(max(1, e.consumed)))
        line = b"".join(parts) if len(parts) > 1 else parts[0]
        return line[:-1]

    async def _read_loop(self) -> None:
        why = ""
        try:
            while True:
                line = await self._readline()
                if line is None:
                    break
                msg = C.decode(line)
                if msg is not C.MISSING:
                    self._dispatch(msg)
        except asyncio.CancelledError:
            why = "closed"
            raise
        except Exception as e:  # connection reset and the like
            why = str(e) or type(e).__name__
        finally:
            if not self._closed:
                self._lost(why)
            else:
                self._fail_pending()
                self._wake_all()

    def _dispatch(self, msg: Any) -> None:
        if isinstance(msg, list):
            for m in msg:
                self._dispatch(m)
            return
        if C.is_response(msg):
            rid = msg.get("id")
            if rid in self._abandoned:
                self._abandoned.discard(rid)
                return
            if rid is None:
                self._dispatch_null_error(msg)
                return
            fut = self._pending.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
            return
        if C.is_notification(msg):
            method = msg["method"]
            params = msg.get("params")
            if method == "shutdown":
                reason = params.get("reason") if isinstance(params, dict) else None
                self.shutdown_reason = reason if isinstance(reason, str) else ("" if reason is None else str(reason))
                for core in self._cores:
                    core.end("daemon shutdown", self.shutdown_reason)
                self._wake_all()
                return
            sid, item = C.notification_item(method, params)
            if item is not None:
                self._route(sid, item)
            return
        C.log.warning("tradewire: ignoring unexpected message: %.200r", msg)

    def _dispatch_null_error(self, msg: Dict[str, Any]) -> None:
        err = error_from_object(msg.get("error"))
        if isinstance(err, Forbidden):
            self._fatal = err
            self._fail_pending()
            self._wake_all()
            return
        live = [i for i, f in self._pending.items() if not f.done()]
        if len(live) == 1:
            fut = self._pending.pop(live[0])
            fut.set_result(msg)
        else:
            C.log.warning("tradewire: daemon error with id null: %s", err)

    def _route(self, sid: Optional[str], item: Any) -> None:
        cores = self._routes.get(sid) if sid is not None else None
        if cores:
            for core in cores:
                core.push(item)
                w = self._wakers.get(id(core))
                if w is not None:
                    w()
            return
        if sid is None or sid in self._dead_ids:
            return
        q = self._orphans.setdefault(sid, deque())
        q.append(item)
        if len(q) > C.ORPHAN_LIMIT:
            q.popleft()

    def _register(self, core: C.SubCore, sid: str) -> None:
        self._dead_ids.discard(sid)
        for item in self._orphans.pop(sid, ()):
            core.push(item)
        self._routes.setdefault(sid, []).append(core)
        if core not in self._cores:
            self._cores.append(core)

    def _unregister_id(self, sid: str) -> None:
        for core in self._routes.pop(sid, ()):
            for p, i in list(core.ids.items()):
                if i == sid:
                    del core.ids[p]
            if not core.ids:
                core.end("unsubscribed")
                if core in self._cores:
                    self._cores.remove(core)
                w = self._wakers.get(id(core))
                if w is not None:
                    w()
        self._orphans.pop(sid, None)
        self._dead_ids.add(sid)

    # ----------------------------------------------------------------- calls

    async def _send(self, obj: Any) -> None:
        data = C.encode(obj)
        if self._closed or self._fatal is not None or self._writer is None:
            raise self._dead_error()
        writer = self._writer
        assert self._wlock is not None
        try:
            async with self._wlock:
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError, RuntimeError) as e:
            # let the reader take what the daemon sent before closing (e.g. a
            # -32020 forbidden line), so the real reason is reported
            task = self._read_task
            if task is not None and not task.done():
                await asyncio.wait({task}, timeout=1.0)
            if self._fatal is None:
                self._lost(str(e))
            raise self._dead_error() from None

    async def call(self, method: str, params: Any = None, *, timeout: Any = _DEFAULT) -> Any:
        """Call ``method``; see :meth:`tradewire.Client.call`."""
        t = self.timeout if timeout is _DEFAULT else timeout
        if self._closed or self._fatal is not None:
            raise self._dead_error()
        rid = next(self._ids)
        msg: Dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        fut: "asyncio.Future[Dict[str, Any]]" = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self._send(msg)
            if t is None:
                resp = await fut
            else:
                resp = await asyncio.wait_for(fut, t)
        except asyncio.TimeoutError:
            self._abandoned.add(rid)
            raise Timeout(f"{method}: no answer from the daemon at {self.socket_path} within {t} s") from None
        finally:
            self._pending.pop(rid, None)
        if "error" in resp:
            raise error_from_object(resp["error"], method)
        return resp.get("result")

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a JSON-RPC notification (never answered)."""
        msg: Dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        await self._send(msg)

    async def ping(self) -> Dict[str, Any]:
        return await self.call("ping")

    async def get_status(self) -> Dict[str, Any]:
        return await self.call("get_status")

    async def get_stats(self) -> Dict[str, Any]:
        return await self.call("get_stats")

    async def get_portfolio(self) -> Dict[str, Any]:
        return await self.call("get_portfolio")

    async def get_event_history(
        self,
        event_type: Optional[str] = None,
        limit: Optional[int] = None,
        since_seq: Optional[int] = None,
        include_data: Optional[bool] = None,
    ) -> Dict[str, Any]:
        return await self.call(
            "get_event_history",
            C.clean(event_type=event_type, limit=limit, since_seq=since_seq, include_data=include_data),
        )

    async def publish(
        self, event_type: str, data: Any = None, metadata: Optional[Dict[str, Any]] = None
    ) -> Dict[str, Any]:
        params: Dict[str, Any] = {"event_type": event_type}
        if data is not None:
            params["data"] = data
        if metadata is not None:
            params["metadata"] = metadata
        return await self.call("publish", params)

    async def run_pipeline(
        self,
        symbols: Optional[Sequence[str]] = None,
        strategy: Optional[str] = None,
        dry_run: Optional[bool] = None,
        timeout_ms: Optional[int] = None,
        market_data: Optional[Dict[str, Any]] = None,
        include_market_data: Optional[bool] = None,
        replay: Optional[str] = None,
    ) -> Dict[str, Any]:
        params = C.clean(
            symbols=list(symbols) if symbols is not None else None,
            strategy=strategy,
            dry_run=dry_run,
            timeout_ms=timeout_ms,
            market_data=market_data,
            include_market_data=include_market_data,
            replay=replay,
        )
        return await self.call("run_pipeline", params, timeout=C.pipeline_timeout(self.timeout, timeout_ms))

    async def start_loop(
        self, interval_seconds: Optional[float] = None, symbols: Optional[Sequence[str]] = None
    ) -> Dict[str, Any]:
        return await self.call(
            "start_loop",
            C.clean(interval_seconds=interval_seconds, symbols=list(symbols) if symbols is not None else None),
        )

    async def stop_loop(self) -> Dict[str, Any]:
        return await self.call("stop_loop", timeout=C.pipeline_timeout(self.timeout, None))

    async def set_trading_state(self, state: str, reason: str) -> Dict[str, Any]:
        return await self.call("set_trading_state", {"state": state, "reason": reason})

    async def discover(self) -> Dict[str, Any]:
        return await self.call("rpc.discover")

    async def shutdown(self) -> Dict[str, Any]:
        return await self.call("shutdown")

    # ------------------------------------------------ consumers (section 11)

    async def ack(
        self, consumer: str, seq: Optional[int] = None, *, up_to_seq: Optional[int] = None
    ) -> Dict[str, Any]:
        """``ack``; see :meth:`tradewire.Client.ack`."""
        return await self.call("ack", C.ack_params(consumer, seq, up_to_seq))

    async def nak(
        self, consumer: str, seq: int, delay_ms: Optional[int] = None, error: Optional[str] = None
    ) -> Dict[str, Any]:
        """``nak``; see :meth:`tradewire.Client.nak`."""
        return await self.call("nak", C.nak_params(consumer, seq, delay_ms, error))

    async def get_consumers(self) -> Dict[str, Any]:
        return await self.call("get_consumers")

    async def delete_consumer(self, consumer: str) -> Dict[str, Any]:
        return await self.call("delete_consumer", {"consumer": consumer})

    async def get_dead_letters(self, consumer: Optional[str] = None, limit: Optional[int] = None) -> Dict[str, Any]:
        return await self.call("get_dead_letters", C.clean(consumer=consumer, limit=limit))

    async def retry_dead_letter(self, id: Any) -> Dict[str, Any]:
        return await self.call("retry_dead_letter", {"id": id})

    async def discard_dead_letter(self, id: Any) -> Dict[str, Any]:
        return await self.call("discard_dead_letter", {"id": id})

    def subscribe(
        self,
        *patterns: Any,
        since_seq: Optional[int] = None,
        on_dropped: Optional[Callable[[EventsDropped], Any]] = None,
        consumer: Optional[str] = None,
        ack_wait_ms: Optional[int] = None,
        max_deliver: Optional[int] = None,
        max_in_flight: Optional[int] = None,
    ) -> "AsyncSubscription":
        """Subscribe; see :meth:`tradewire.Client.subscribe` (``consumer=`` too).

        The result is both awaitable and an async iterator::

            sub = await client.subscribe("data_ready")      # subscribed now
            async for ev in client.subscribe("audit_*"):    # subscribes on first use
                ...

        ``on_dropped`` may be a plain function or a coroutine function.
        """
        pats = C.flatten_patterns(patterns)
        extra = C.check_consumer_options(
            consumer, pats, {"ack_wait_ms": ack_wait_ms, "max_deliver": max_deliver, "max_in_flight": max_in_flight}
        )
        sub = AsyncSubscription(self, pats, since_seq, on_dropped)
        sub._core.extra = extra
        return sub

    async def _subscribe_core(self, core: C.SubCore, since_seq: Optional[int]) -> None:
        native = len(core.patterns) == 1 or since_seq is None
        try:
            for p in core.patterns:
                params: Dict[str, Any] = {"event_type": p, **core.extra}
                if native and since_seq is not None:
                    params["since_seq"] = since_seq
                res = await self.call("subscribe", params)
                sid = res.get("subscription") if isinstance(res, dict) else None
                if not isinstance(sid, str):
                    raise ProtocolError(f"subscribe answered without a subscription id: {res!r}")
                core.ids[p] = sid
                self._register(core, sid)
            if not native:
                fetched = []
                for p in core.patterns:
                    h = await self.get_event_history(event_type=p, since_seq=since_seq)
                    fetched.append((p, core.ids[p], h))
                core.set_replay(C.merge_history(since_seq or 0, fetched))
        except BaseException:
            await self._drop_core(core)
            raise

    async def _drop_core(self, core: C.SubCore) -> None:
        for sid in list(core.ids.values()):
            try:
                if self.connected:
                    await self.call("unsubscribe", {"subscription": sid})
            except Exception:
                pass
            self._unregister_id(sid)
        core.end("unsubscribed")
        if core in self._cores:
            self._cores.remove(core)
        self._wakers.pop(id(core), None)

    async def unsubscribe(self, subscription: Any = None, *, event_type: Optional[str] = None) -> Dict[str, Any]:
        """``unsubscribe`` by :class:`AsyncSubscription`, id or ``event_type`` pattern."""
        if isinstance(subscription, AsyncSubscription):
            removed = 0
            for sid in list(subscription.ids.values()):
                res = await self.call("unsubscribe", {"subscription": sid})
                removed += int(res.get("removed", 0)) if isinstance(res, dict) else 0
                self._unregister_id(sid)
            subscription._core.end("unsubscribed")
            self._wakers.pop(id(subscription._core), None)
            return {"removed": removed}
        res = await self.call("unsubscribe", C.clean(subscription=subscription, event_type=event_type))
        if isinstance(subscription, str):
            self._unregister_id(subscription)
        elif event_type is not None:
            for core in list(self._cores):
                sid = core.ids.get(event_type)
                if sid is not None:
                    self._unregister_id(sid)
        return res


class AsyncSubscription:
    """Async iterator over the events of :meth:`AsyncClient.subscribe`.

    Same items and end conditions as :class:`tradewire.Subscription`.
    """

    def __init__(
        self,
        client: AsyncClient,
        patterns: List[str],
        since_seq: Optional[int],
        on_dropped: Optional[Callable[[EventsDropped], Any]],
    ) -> None:
        self.client = client
        self._core = C.SubCore(patterns)
        self._since_seq = since_seq
        self.on_dropped = on_dropped
        self._started = False
        self._wake: Optional[asyncio.Event] = None

    async def start(self) -> "AsyncSubscription":
        """Send the subscribe requests (done once; later calls return at once)."""
        if not self._started:
            self._started = True
            self._wake = asyncio.Event()
            self.client._wakers[id(self._core)] = self._wake.set
            await self.client._subscribe_core(self._core, self._since_seq)
        return self

    def __await__(self) -> Any:
        return self.start().__await__()

    @property
    def patterns(self) -> List[str]:
        return list(self._core.patterns)

    @property
    def ids(self) -> Dict[str, str]:
        return dict(self._core.ids)

    @property
    def id(self) -> Optional[str]:
        return next(iter(self._core.ids.values()), None)

    @property
    def ended(self) -> bool:
        return self._core.ended and not self._core.pending()

    @property
    def shutdown_reason(self) -> Optional[str]:
        return self._core.shutdown_reason

    async def get(self, timeout: Optional[float] = None) -> Any:
        """Next item, or ``None`` after ``timeout`` seconds; see :meth:`tradewire.Subscription.get`."""
        await self.start()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        assert self._wake is not None
        while True:
            item = self._core.pop()
            if item is not C.MISSING:
                if isinstance(item, EventsDropped) and self.on_dropped is not None:
                    r = self.on_dropped(item)
                    if inspect.isawaitable(r):
                        await r
                    continue
                return item
            if self._core.ended:
                raise SubscriptionClosed(f"subscription {self.patterns} ended: {self._core.end_reason}")
            if self.client._closed or self.client._fatal is not None:
                raise self.client._dead_error()
            self._wake.clear()
            if deadline is None:
                await self._wake.wait()
            else:
                rem = deadline - loop.time()
                if rem <= 0:
                    return None
                try:
                    await asyncio.wait_for(self._wake.wait(), rem)
                except asyncio.TimeoutError:
                    pass

    def __aiter__(self) -> "AsyncSubscription":
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.get(None)
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        """Unsubscribe (if still connected) and end the iteration."""
        if not self._started or (self._core.ended and not self._core.ids):
            self._core.end("closed")
            return
        if self.client.connected and self._core.ids:
            try:
                await self.client.unsubscribe(self)
                return
            except (NotConnected, Timeout):
                pass
        self._core.end("closed")
        if self._wake is not None:
            self._wake.set()

    async def __aenter__(self) -> "AsyncSubscription":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<tradewire.AsyncSubscription {self.ids!r}{' ended' if self._core.ended else ''}>"


# ---------------------------------------------------------------------------
# Durable consumers (docs/PROTOCOL.md section 11)


class AsyncDelivery(DeliveryBase):
    """An :class:`AsyncConsumer`'s delivery: ``await d.ack()``, ``await d.nak(...)``;
    the fields are :class:`tradewire.consumer.DeliveryBase`'s."""

    def __init__(self, owner: "AsyncConsumer", event: Event) -> None:
        super().__init__(owner.name, event)
        self._owner = owner

    async def ack(self) -> int:
        """See :meth:`tradewire.Delivery.ack`."""
        n = await self._owner.ack(self.seq)
        if n:
            self.settled = "acked"
        return n

    async def nak(self, delay_ms: Optional[int] = None, error: Optional[str] = None) -> bool:
        """See :meth:`tradewire.Delivery.nak`."""
        ok = await self._owner.nak(self.seq, delay_ms=delay_ms, error=error)
        if ok:
            self.settled = "naked"
        return ok


class AsyncConsumer(ConsumerBase):
    """The asyncio :class:`tradewire.Consumer`: the same options and behaviour.

    >>> async with AsyncConsumer("billing", "order.*") as c:
    ...     async for d in c:
    ...         await handle(d.event)
    ...         await d.ack()
    """

    def __init__(
        self,
        name: str,
        pattern: str,
        socket_path: Optional[str] = None,
        *,
        socket: Optional[str] = None,
        since_seq: Optional[int] = None,
        ack_wait_ms: Optional[int] = None,
        max_deliver: Optional[int] = None,
        max_in_flight: Optional[int] = None,
        reconnect: bool = True,
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 5.0,
        timeout: Optional[float] = 30.0,
        poll_interval: float = 0.25,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        spec = _Spec(
            name, pattern, socket_path, socket, since_seq, ack_wait_ms, max_deliver, max_in_flight,
            reconnect, reconnect_delay, max_reconnect_delay,
        )
        super().__init__(spec, timeout, poll_interval)
        self.limit = limit
        self._stop_requested = False

    async def open(self) -> "AsyncConsumer":
        """Connect and subscribe (once)."""
        if not self._opened:
            await self._connect()
            self._opened = True
        return self

    async def _connect(self) -> None:
        client = AsyncClient(self._spec.socket_path, timeout=self.timeout, limit=self.limit)
        await client.connect()
        try:
            sub = await client.subscribe(self.pattern, **self._spec.subscribe_kwargs()).start()
        except BaseException:
            await client.close()
            raise
        self._spec.subscribed()
        self._client, self._sub = client, sub

    async def _drop(self) -> None:
        client, self._client, self._sub = self._client, None, None
        if client is not None:
            await client.close()

    def stop(self) -> None:
        """End the iteration within ``poll_interval`` seconds."""
        self._stop_requested = True

    async def close(self) -> None:
        """Stop and close the connection.  Idempotent."""
        self._stop_requested = True
        await self._drop()

    async def __aenter__(self) -> "AsyncConsumer":
        return await self.open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def get(self, timeout: Optional[float] = None) -> Optional[AsyncDelivery]:
        """See :meth:`tradewire.Consumer.get`."""
        await self.open()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(0.0, timeout)
        while True:
            if self._stop_requested:
                raise self._stopped()
            rem = None if deadline is None else deadline - loop.time()
            if rem is not None and rem <= 0:
                return None
            sub = self._sub
            if sub is None:
                await self._reconnect(rem)
                continue
            try:
                item = await sub.get(timeout=self.poll_interval if rem is None else min(self.poll_interval, rem))
            except (SubscriptionClosed, NotConnected, Timeout, OSError) as e:
                if self._stop_requested:
                    raise self._stopped() from None
                await self._drop()
                self._spec.lost(e)
                continue
            ev = _Spec.delivery_of(item, self.name)
            if ev is not None:
                return AsyncDelivery(self, ev)

    async def _reconnect(self, rem: Optional[float]) -> None:
        pause = self._spec.backoff.next()
        if rem is not None and pause > rem:
            await asyncio.sleep(rem)
            return
        slept = 0.0
        while not self._stop_requested and slept < pause:  # in steps, so that stop() is seen
            step = min(self.poll_interval, pause - slept)
            await asyncio.sleep(step)
            slept += step
        if self._stop_requested:
            return
        try:
            await self._connect()
        except (NotConnected, Timeout, OSError, RPCError) as e:
            self._spec.connect_failed(e)
            return
        self.reconnects += 1
        C.log.info("tradewire consumer %s: subscribed again (%s)", self.name, self.subscription)

    def __aiter__(self) -> "AsyncConsumer":
        return self

    async def __anext__(self) -> AsyncDelivery:
        try:
            d = await self.get(None)
        except SubscriptionClosed:
            raise StopAsyncIteration from None
        assert d is not None
        return d

    async def _settle(self, method: str, params: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        try:
            if self._client is None:
                raise self._not_connected()
            res = await self._client.call(method, params)
        except (NotConnected, Timeout, OSError) as e:
            self._settle_failed(method, params, e)
            return None
        return res if isinstance(res, dict) else {}

    async def ack(self, seq: int) -> int:
        """See :meth:`tradewire.Consumer.ack`."""
        return self._acked(await self._settle("ack", self._ack_params(seq)))

    async def ack_up_to(self, seq: int) -> int:
        """See :meth:`tradewire.Consumer.ack_up_to`."""
        return self._acked(await self._settle("ack", self._ack_params(None, seq)))

    async def nak(self, seq: int, delay_ms: Optional[int] = None, error: Optional[str] = None) -> bool:
        """See :meth:`tradewire.Consumer.nak`."""
        return self._ok(await self._settle("nak", self._nak_params(seq, delay_ms, error)))
