"""Blocking client: :class:`Client` and :class:`Subscription`.

There is no background thread.  Whichever call is waiting reads from the
socket; every message read is dispatched -- responses by ``id`` to their
callers, ``event`` / ``events_dropped`` notifications to the buffer of their
subscription, ``shutdown`` to every subscription -- so notifications that
arrive while a call waits for its answer are kept for the subscription
iterator.  Several threads may share one client (one reads, the others wait
on a condition variable), but the intended use is one user thread.
"""
from __future__ import annotations

import itertools
import math
import os
import select
import socket
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Set

from . import _common as C
from .errors import (
    ConnectionLost,
    DaemonUnavailable,
    Forbidden,
    NotConnected,
    ProtocolError,
    SubscriptionClosed,
    Timeout,
    error_from_object,
)
from .events import EventsDropped
from .paths import DEFAULT_SOURCE, check_peer, check_socket_dir, resolve_socket_path

__all__ = ["Client", "Subscription"]

_DEFAULT: Any = object()
_RECV = 256 * 1024


class _Expired(Exception):
    """Internal: a deadline passed."""


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``sock`` to be readable (or closed)."""
    timeout = max(0.0, timeout)
    if hasattr(select, "poll"):
        p = select.poll()
        p.register(sock.fileno(), select.POLLIN | select.POLLPRI)
        return bool(p.poll(int(math.ceil(timeout * 1000))))
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


def _deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else time.monotonic() + max(0.0, timeout)


def _remaining(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else deadline - time.monotonic()


class Client:
    """A blocking connection to the tradewire daemon.

    >>> with Client() as c:
    ...     c.ping()
    {'pong': True}

    ``socket_path``: see :func:`tradewire.default_socket_path` (explicit,
    ``$TRADEWIRE_SOCKET``, ``$XDG_RUNTIME_DIR/tradewire.sock``,
    ``/tmp/tradewire-$UID/tradewire.sock``).  ``timeout``: seconds to wait for
    each answer (``None``: forever); ``run_pipeline`` waits at least its
    pipeline deadline plus a grace.  The connection is opened at once unless
    ``connect=False``; failing to reach the socket raises
    :class:`~tradewire.DaemonUnavailable`.

    Before sending anything the client makes sure it talks to your daemon:
    the default directory ``/tmp/tradewire-$UID`` must be a real directory
    owned by you with mode 0700 (else :class:`~tradewire.UnsafeSocketDirectory`),
    and the server at any path must run as you or as root (SO_PEERCRED; else
    :class:`~tradewire.UntrustedPeer`).
    """

    def __init__(
        self,
        socket_path: Optional[str] = None,
        *,
        timeout: Optional[float] = C.DEFAULT_TIMEOUT,
        connect_timeout: Optional[float] = 5.0,
        connect: bool = True,
    ) -> None:
        self.socket_path, self.socket_source = resolve_socket_path(socket_path)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._sock: Optional[socket.socket] = None
        self._cond = threading.Condition(threading.Lock())
        self._wlock = threading.Lock()
        self._ids = itertools.count(1)
        self._reset_state()
        self._closed = True
        if connect:
            self.connect()

    # ------------------------------------------------------------------ state

    def _reset_state(self) -> None:
        self._rbuf = bytearray()
        self._scan = 0
        self._reading = False
        self._results: Dict[Any, Dict[str, Any]] = {}
        self._pending: Dict[Any, str] = {}
        self._abandoned: Set[Any] = set()
        self._routes: Dict[str, List[C.SubCore]] = {}
        self._orphans: Dict[str, Deque[Any]] = {}
        self._dead_ids: Set[str] = set()
        self._cores: List[C.SubCore] = []
        self._fatal: Optional[BaseException] = None
        #: the ``reason`` of the daemon's ``shutdown`` notification, once received
        self.shutdown_reason: Optional[str] = None

    @property
    def connected(self) -> bool:
        """True while the connection is open and has not been lost."""
        return not self._closed and self._fatal is None

    def connect(self) -> "Client":
        """Open the connection (again).

        Raises :class:`DaemonUnavailable`, or an :class:`~tradewire.UntrustedSocket`
        (nothing sent) when the socket directory or the server is not trusted.
        """
        if self._sock is not None:
            self.close()
        if self.socket_source == DEFAULT_SOURCE:
            check_socket_dir(os.path.dirname(self.socket_path), self.socket_path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(self.connect_timeout)
            s.connect(self.socket_path)
            s.settimeout(None)
        except (OSError, ValueError) as e:
            s.close()
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise DaemonUnavailable(self.socket_path, reason, self.socket_source) from None
        try:
            check_peer(s, self.socket_path)
        except BaseException:
            s.close()
            raise
        with self._cond:
            self._reset_state()
            self._sock = s
            self._closed = False
        return self

    def close(self) -> None:
        """Close the connection; open subscriptions end.  Idempotent."""
        with self._cond:
            sock, self._sock = self._sock, None
            self._closed = True
            for core in self._cores:
                core.end("client closed")
            self._cond.notify_all()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def __enter__(self) -> "Client":
        if self._closed:
            self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if self._sock is not None:
                self._sock.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed"
        return f"<tradewire.Client {self.socket_path!r} {state}>"

    # ------------------------------------------------------------ low level

    def _dead_error(self) -> BaseException:
        """A fresh exception describing why no call can succeed now (lock held)."""
        if self._closed:
            return NotConnected(f"client for {self.socket_path} is closed", self.socket_path)
        f = self._fatal
        if isinstance(f, ConnectionLost):
            return ConnectionLost(str(f), f.socket_path, f.shutdown_reason)
        if isinstance(f, Forbidden):
            return error_from_object(f.to_dict(), f.method)
        return f if f is not None else NotConnected("not connected", self.socket_path)

    def _lost(self, why: str) -> None:
        """Mark the connection lost (lock held)."""
        if self._fatal is None:
            msg = f"connection to the tradewire daemon at {self.socket_path} closed"
            if self.shutdown_reason is not None:
                msg += f" (daemon shutdown: {self.shutdown_reason})"
            elif why:
                msg += f" ({why})"
            self._fatal = ConnectionLost(msg, self.socket_path, self.shutdown_reason)
        self._cond.notify_all()

    def _send(self, obj: Any) -> None:
        data = C.encode(obj)
        with self._cond:
            if self._closed or self._fatal is not None or self._sock is None:
                raise self._dead_error()
            sock = self._sock
        try:
            with self._wlock:
                sock.sendall(data)
        except OSError as e:
            self._salvage(sock)
            with self._cond:
                self._lost(e.strerror or str(e))
                raise self._dead_error() from None

    def _salvage(self, sock: socket.socket) -> None:
        """After a failed write, read what the daemon sent before it closed
        (e.g. its -32020 ``forbidden`` line) so the real reason is reported."""
        with self._cond:
            if self._reading:
                return
            self._reading = True
        msgs: List[Any] = []
        try:
            while _readable(sock, 0.05):
                chunk = sock.recv(_RECV)
                if not chunk:
                    break
                self._rbuf += chunk
            self._take_lines(msgs)
        except OSError:
            pass
        finally:
            with self._cond:
                self._reading = False
                for m in msgs:
                    self._dispatch(m)
                self._cond.notify_all()

    def _read_messages(self, timeout: Optional[float]) -> List[Any]:
        """Read whatever is available (waiting at most ``timeout``); return parsed messages.

        Only the thread holding the reader role calls this.
        """
        out: List[Any] = []
        if self._take_lines(out):
            return out
        sock = self._sock
        if sock is None:
            raise ConnectionLost("closed", self.socket_path)
        if timeout is not None and not _readable(sock, timeout):
            return out
        chunk = sock.recv(_RECV)
        if not chunk:
            raise EOFError("daemon closed the connection")
        self._rbuf += chunk
        self._take_lines(out)
        return out

    def _take_lines(self, out: List[Any]) -> bool:
        buf = self._rbuf
        start = 0
        found = False
        while True:
            nl = buf.find(b"\n", max(start, self._scan))
            if nl < 0:
                break
            msg = C.decode(bytes(buf[start:nl]))
            if msg is not C.MISSING:
                out.append(msg)
            found = True
            start = nl + 1
            self._scan = start
        if start:
            del buf[:start]
        self._scan = len(buf)
        return found

    def _wait(self, take: Callable[[], Any], deadline: Optional[float]) -> Any:
        """Return ``take()`` once it is not MISSING, reading the socket meanwhile.

        ``take`` runs with the lock held.  Raises :class:`_Expired` at the
        deadline, the connection's error once nothing more can arrive.
        """
        while True:
            with self._cond:
                while True:
                    v = take()
                    if v is not C.MISSING:
                        return v
                    if self._closed or self._fatal is not None:
                        raise self._dead_error()
                    rem = _remaining(deadline)
                    if rem is not None and rem <= 0:
                        raise _Expired()
                    if not self._reading:
                        self._reading = True
                        break
                    self._cond.wait(rem)
            msgs: List[Any] = []
            try:
                msgs = self._read_messages(rem)
            except (OSError, EOFError, ConnectionLost) as e:
                with self._cond:
                    self._reading = False
                    if not self._closed:
                        self._lost("" if isinstance(e, EOFError) else str(e))
                    self._cond.notify_all()
                continue
            except BaseException:
                with self._cond:
                    self._reading = False
                    self._cond.notify_all()
                raise
            with self._cond:
                self._reading = False
                for m in msgs:
                    self._dispatch(m)
                self._cond.notify_all()

    def _dispatch(self, msg: Any) -> None:
        """Route one received message (lock held)."""
        if isinstance(msg, list):  # a batch answer
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
            if rid in self._pending:
                self._results[rid] = msg
            else:
                C.log.debug("tradewire: dropping a response for unknown id %r", rid)
            return
        if C.is_notification(msg):
            method = msg["method"]
            params = msg.get("params")
            if method == "shutdown":
                reason = params.get("reason") if isinstance(params, dict) else None
                self.shutdown_reason = reason if isinstance(reason, str) else ("" if reason is None else str(reason))
                for core in self._cores:
                    core.end("daemon shutdown", self.shutdown_reason)
                return
            sid, item = C.notification_item(method, params)
            if item is None:
                C.log.debug("tradewire: ignoring notification %r", method)
                return
            self._route(sid, item)
            return
        C.log.warning("tradewire: ignoring unexpected message: %.200r", msg)

    def _dispatch_null_error(self, msg: Dict[str, Any]) -> None:
        err = error_from_object(msg.get("error"))
        if isinstance(err, Forbidden):
            self._fatal = err
            return
        live = [i for i in self._pending if i not in self._abandoned and i not in self._results]
        if len(live) == 1:
            self._results[live[0]] = msg
        else:
            C.log.warning("tradewire: daemon error with id null: %s", err)

    def _route(self, sid: Optional[str], item: Any) -> None:
        cores = self._routes.get(sid) if sid is not None else None
        if cores:
            for core in cores:
                core.push(item)
            return
        if sid is None or sid in self._dead_ids:
            return
        q = self._orphans.setdefault(sid, deque())
        q.append(item)
        if len(q) > C.ORPHAN_LIMIT:
            q.popleft()

    def _register(self, core: C.SubCore, sid: str) -> None:
        """Attach subscription id ``sid`` to ``core`` (lock held)."""
        self._dead_ids.discard(sid)
        for item in self._orphans.pop(sid, ()):  # arrived before we knew the id
            core.push(item)
        self._routes.setdefault(sid, []).append(core)
        if core not in self._cores:
            self._cores.append(core)

    def _unregister_id(self, sid: str) -> None:
        """Forget subscription id ``sid`` (lock held)."""
        for core in self._routes.pop(sid, ()):
            for p, i in list(core.ids.items()):
                if i == sid:
                    del core.ids[p]
            if not core.ids:
                core.end("unsubscribed")
                if core in self._cores:
                    self._cores.remove(core)
        self._orphans.pop(sid, None)
        self._dead_ids.add(sid)

    # ----------------------------------------------------------------- calls

    def call(self, method: str, params: Any = None, *, timeout: Any = _DEFAULT) -> Any:
        """Call ``method`` with ``params`` (a dict, or ``None`` to omit them).

        Returns the ``result``; raises the matching :class:`~tradewire.RPCError`
        subclass for an error answer, :class:`~tradewire.Timeout` when no answer
        came within ``timeout`` seconds (default: the client's), and
        :class:`~tradewire.NotConnected` subclasses when the connection is gone.
        """
        t = self.timeout if timeout is _DEFAULT else timeout
        rid = next(self._ids)
        msg: Dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        with self._cond:
            self._pending[rid] = method
        try:
            self._send(msg)
            resp = self._wait(lambda: self._results.pop(rid, C.MISSING), _deadline(t))
        except _Expired:
            with self._cond:
                self._abandoned.add(rid)
            raise Timeout(f"{method}: no answer from the daemon at {self.socket_path} within {t} s") from None
        finally:
            with self._cond:
                self._pending.pop(rid, None)
        if "error" in resp:
            raise error_from_object(resp["error"], method)
        return resp.get("result")

    def notify(self, method: str, params: Any = None) -> None:
        """Send a JSON-RPC notification (no ``id``: the daemon never answers)."""
        msg: Dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self._send(msg)

    # ---------------------------------------------------------- the methods

    def ping(self) -> Dict[str, Any]:
        """``ping`` → ``{"pong": true}``."""
        return self.call("ping")

    def get_status(self) -> Dict[str, Any]:
        """``get_status`` → version, api_level, pid, socket, mode, uptime_seconds, loop."""
        return self.call("get_status")

    def get_stats(self) -> Dict[str, Any]:
        """``get_stats`` → bus and pipeline counters."""
        return self.call("get_stats")

    def get_portfolio(self) -> Dict[str, Any]:
        """``get_portfolio`` → cash, equity, positions (with unrealized P&L), realized P&L,
        commissions, orders, risk_budget, as_of_seq."""
        return self.call("get_portfolio")

    def get_event_history(
        self,
        event_type: Optional[str] = None,
        limit: Optional[int] = None,
        since_seq: Optional[int] = None,
        include_data: Optional[bool] = None,
    ) -> Dict[str, Any]:
        """``get_event_history`` → ``{"events", "oldest_seq", "newest_seq", "capacity"}``."""
        return self.call(
            "get_event_history",
            C.clean(event_type=event_type, limit=limit, since_seq=since_seq, include_data=include_data),
        )

    def publish(self, event_type: str, data: Any = None, metadata: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """``publish`` → ``{"seq", "event_type", "timestamp", "subscribers"}``
        (plus ``iteration``, ``iteration_id``, ``completed`` for pipeline events)."""
        params: Dict[str, Any] = {"event_type": event_type}
        if data is not None:
            params["data"] = data
        if metadata is not None:
            params["metadata"] = metadata
        return self.call("publish", params)

    def run_pipeline(
        self,
        symbols: Optional[Sequence[str]] = None,
        strategy: Optional[str] = None,
        dry_run: Optional[bool] = None,
        timeout_ms: Optional[int] = None,
        market_data: Optional[Dict[str, Any]] = None,
        include_market_data: Optional[bool] = None,
        replay: Optional[str] = None,
    ) -> Dict[str, Any]:
        """``run_pipeline``: one iteration; returns its full result. ``replay=ITERATION_ID``
        runs a recorded iteration again as a dry run; the result's ``replay.differences``
        lists what today's agents decide differently."""
        params = C.clean(
            symbols=list(symbols) if symbols is not None else None,
            strategy=strategy,
            dry_run=dry_run,
            timeout_ms=timeout_ms,
            market_data=market_data,
            include_market_data=include_market_data,
            replay=replay,
        )
        return self.call("run_pipeline", params, timeout=C.pipeline_timeout(self.timeout, timeout_ms))

    def start_loop(self, interval_seconds: Optional[float] = None, symbols: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """``start_loop`` → ``{"running": true, "interval_seconds"}``."""
        return self.call(
            "start_loop",
            C.clean(interval_seconds=interval_seconds, symbols=list(symbols) if symbols is not None else None),
        )

    def stop_loop(self) -> Dict[str, Any]:
        """``stop_loop`` → ``{"running": false, "iterations"}`` (waits for an iteration in flight)."""
        return self.call("stop_loop", timeout=C.pipeline_timeout(self.timeout, None))

    def set_trading_state(self, state: str, reason: str) -> Dict[str, Any]:
        """``set_trading_state`` (the kill switch): ``state`` is ``"active"``, ``"reducing"``
        or ``"halted"``, ``reason`` is required → ``{"state", "previous", "since", "reason"}``."""
        return self.call("set_trading_state", {"state": state, "reason": reason})

    def discover(self) -> Dict[str, Any]:
        """``rpc.discover`` → the daemon's OpenRPC document."""
        return self.call("rpc.discover")

    def shutdown(self) -> Dict[str, Any]:
        """``shutdown`` → ``{"ok": true}``; the daemon then stops gracefully."""
        return self.call("shutdown")

    # ------------------------------------------------ consumers (section 11)

    def ack(self, consumer: str, seq: Optional[int] = None, *, up_to_seq: Optional[int] = None) -> Dict[str, Any]:
        """``ack {consumer, seq}`` or ``{consumer, up_to_seq}`` → ``{"acked": n}``.

        Only from a connection subscribed with ``consumer``
        (else :class:`~tradewire.UnknownConsumerError`)."""
        return self.call("ack", C.ack_params(consumer, seq, up_to_seq))

    def nak(
        self, consumer: str, seq: int, delay_ms: Optional[int] = None, error: Optional[str] = None
    ) -> Dict[str, Any]:
        """``nak {consumer, seq, delay_ms?, error?}`` → ``{"ok": true}``: redelivered after the delay."""
        return self.call("nak", C.nak_params(consumer, seq, delay_ms, error))

    def get_consumers(self) -> Dict[str, Any]:
        """``get_consumers`` → ``{"consumers": [{"consumer", "pattern", "position", "pending",
        "redelivered", "dead_letters", "members", ...}]}``."""
        return self.call("get_consumers")

    def delete_consumer(self, consumer: str) -> Dict[str, Any]:
        """``delete_consumer {consumer}`` → ``{"removed": n}``."""
        return self.call("delete_consumer", {"consumer": consumer})

    def get_dead_letters(self, consumer: Optional[str] = None, limit: Optional[int] = None) -> Dict[str, Any]:
        """``get_dead_letters`` → ``{"dead_letters": [{"id", "consumer", "seq", "event_type",
        "attempts", "last_error", "first_failed", "last_failed", ...}]}`` (reading removes nothing)."""
        return self.call("get_dead_letters", C.clean(consumer=consumer, limit=limit))

    def retry_dead_letter(self, id: Any) -> Dict[str, Any]:
        """``retry_dead_letter {id}`` → ``{"ok": true}``: delivered to its consumer again, from
        attempt 1.  An unknown id raises :class:`~tradewire.DeadLetterNotFoundError`."""
        return self.call("retry_dead_letter", {"id": id})

    def discard_dead_letter(self, id: Any) -> Dict[str, Any]:
        """``discard_dead_letter {id}`` → ``{"removed": n}`` (0 for an unknown id)."""
        return self.call("discard_dead_letter", {"id": id})

    def subscribe(
        self,
        *patterns: Any,
        since_seq: Optional[int] = None,
        on_dropped: Optional[Callable[[EventsDropped], Any]] = None,
        consumer: Optional[str] = None,
        ack_wait_ms: Optional[int] = None,
        max_deliver: Optional[int] = None,
        max_in_flight: Optional[int] = None,
    ) -> "Subscription":
        """Subscribe to one or more event-type patterns; returns an iterator of events.

        Each pattern is one daemon subscription; the returned
        :class:`Subscription` merges them (an event matching several patterns
        is yielded once).  With ``since_seq``, events with a larger seq still
        in the daemon's history come first, then live ones, without gap or
        duplicate.  ``events_dropped`` notices are passed to ``on_dropped``
        when given, else yielded as :class:`~tradewire.EventsDropped` objects.
        The daemon's ``shutdown`` notification ends the iteration.

        ``consumer=NAME`` (one pattern only) subscribes as a member of the durable
        consumer NAME (docs/PROTOCOL.md section 11), with ``ack_wait_ms``,
        ``max_deliver`` and ``max_in_flight``; its events carry ``.delivery`` and
        must be acknowledged with :meth:`ack`.  :class:`tradewire.Consumer` wraps
        this with deliveries that ack themselves and reconnection.
        """
        pats = C.flatten_patterns(patterns)
        core = C.SubCore(pats)
        core.extra = C.check_consumer_options(
            consumer, pats, {"ack_wait_ms": ack_wait_ms, "max_deliver": max_deliver, "max_in_flight": max_in_flight}
        )
        native = len(pats) == 1 or since_seq is None
        try:
            for p in pats:
                params: Dict[str, Any] = {"event_type": p, **core.extra}
                if native and since_seq is not None:
                    params["since_seq"] = since_seq
                res = self.call("subscribe", params)
                sid = res.get("subscription") if isinstance(res, dict) else None
                if not isinstance(sid, str):
                    raise ProtocolError(f"subscribe answered without a subscription id: {res!r}")
                with self._cond:
                    core.ids[p] = sid
                    self._register(core, sid)
            if not native:
                fetched = []
                for p in pats:
                    h = self.get_event_history(event_type=p, since_seq=since_seq)
                    fetched.append((p, core.ids[p], h))
                items = C.merge_history(since_seq or 0, fetched)
                with self._cond:
                    core.set_replay(items)
        except BaseException:
            self._drop_core(core)
            raise
        return Subscription(self, core, on_dropped)

    def _drop_core(self, core: C.SubCore) -> None:
        """Unsubscribe every id of ``core`` (best effort)."""
        for sid in list(core.ids.values()):
            try:
                if self.connected:
                    self.call("unsubscribe", {"subscription": sid})
            except Exception:
                pass
            with self._cond:
                self._unregister_id(sid)
        with self._cond:
            core.end("unsubscribed")
            if core in self._cores:
                self._cores.remove(core)

    def unsubscribe(self, subscription: Any = None, *, event_type: Optional[str] = None) -> Dict[str, Any]:
        """``unsubscribe`` by :class:`Subscription`, subscription id, or ``event_type`` pattern.

        Returns ``{"removed": n}`` (summed over the ids of a multi-pattern
        :class:`Subscription`).
        """
        if isinstance(subscription, Subscription):
            removed = 0
            for sid in list(subscription.ids.values()):
                res = self.call("unsubscribe", {"subscription": sid})
                removed += int(res.get("removed", 0)) if isinstance(res, dict) else 0
                with self._cond:
                    self._unregister_id(sid)
            with self._cond:
                subscription._core.end("unsubscribed")
            return {"removed": removed}
        res = self.call("unsubscribe", C.clean(subscription=subscription, event_type=event_type))
        with self._cond:
            if isinstance(subscription, str):
                self._unregister_id(subscription)
            elif event_type is not None:
                for core in list(self._cores):
                    sid = core.ids.get(event_type)
                    if sid is not None:
                        self._unregister_id(sid)
        return res


class Subscription:
    """Iterator over the events of a :meth:`Client.subscribe` call.

    Yields :class:`~tradewire.Event` (a dict: the Event object, with
    ``.subscription``) and, unless an ``on_dropped`` callback was given,
    :class:`~tradewire.EventsDropped`.  Iteration ends cleanly when the daemon
    announces a shutdown, after :meth:`close`, or when the client is closed;
    a connection lost without a shutdown notice raises
    :class:`~tradewire.ConnectionLost`.
    """

    def __init__(
        self,
        client: Client,
        core: C.SubCore,
        on_dropped: Optional[Callable[[EventsDropped], Any]] = None,
    ) -> None:
        self.client = client
        self._core = core
        self.on_dropped = on_dropped

    @property
    def patterns(self) -> List[str]:
        return list(self._core.patterns)

    @property
    def ids(self) -> Dict[str, str]:
        """``{pattern: subscription id}``."""
        return dict(self._core.ids)

    @property
    def id(self) -> Optional[str]:
        """The subscription id (the first one for a multi-pattern subscription)."""
        return next(iter(self._core.ids.values()), None)

    @property
    def ended(self) -> bool:
        return self._core.ended and not self._core.pending()

    @property
    def shutdown_reason(self) -> Optional[str]:
        """The daemon's shutdown reason, if a shutdown ended this subscription."""
        return self._core.shutdown_reason

    def _take(self) -> Any:
        item = self._core.pop()
        if item is not C.MISSING:
            return item
        if self._core.ended:
            raise SubscriptionClosed(f"subscription {self.patterns} ended: {self._core.end_reason}")
        return C.MISSING

    def get(self, timeout: Optional[float] = None) -> Any:
        """Next :class:`Event` / :class:`EventsDropped`, or ``None`` after ``timeout`` seconds.

        Raises :class:`~tradewire.SubscriptionClosed` once the subscription has
        ended, :class:`~tradewire.ConnectionLost` if the connection broke.
        """
        deadline = _deadline(timeout)
        while True:
            try:
                item = self.client._wait(self._take, deadline)
            except _Expired:
                return None
            if isinstance(item, EventsDropped) and self.on_dropped is not None:
                self.on_dropped(item)
                continue
            return item

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return self.get(None)
        except SubscriptionClosed:
            raise StopIteration from None

    def close(self) -> None:
        """Unsubscribe (if still connected) and end the iteration."""
        if self._core.ended and not self._core.ids:
            return
        if self.client.connected and self._core.ids:
            try:
                self.client.unsubscribe(self)
                return
            except (NotConnected, Timeout):
                pass
        with self.client._cond:
            self._core.end("closed")

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tradewire.Subscription {self.ids!r}{' ended' if self._core.ended else ''}>"
