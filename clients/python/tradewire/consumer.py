"""Durable consumers (docs/PROTOCOL.md section 11): :class:`Consumer` and :class:`Delivery`.

A plain subscription is at-most-once and lives with its connection.  A consumer is
at-least-once: the daemon keeps its position (across disconnects and, with a journal,
restarts), delivers each event until it is acknowledged, redelivers it after
``ack_wait_ms`` or a ``nak``, and after ``max_deliver`` attempts sets it aside as a dead
letter.  Several connections subscribed with one consumer name share its events (a
queue group: each event goes to one of them).

:class:`Consumer` is the blocking one; :class:`tradewire.AsyncConsumer` (in ``aio``)
the asyncio one.  Both reconnect and subscribe again when the connection goes (the
daemon stopped, restarted or crashed): deliveries that were not acknowledged come again.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, Iterator, Optional

from . import _common as C
from .client import Client, Subscription
from .errors import NotConnected, RPCError, SubscriptionClosed, Timeout, UntrustedSocket
from .events import Event, EventsDropped

__all__ = ["Consumer", "ConsumerBase", "Delivery", "DeliveryBase"]

log = logging.getLogger("tradewire.consumer")

#: daemon answers to a subscribe that are worth another try after a pause
_TRANSIENT = frozenset({"shutting_down", "overloaded", "rate_limited", "cluster_unavailable"})


class _Backoff:
    """Reconnect pauses: ``first`` seconds, doubling up to ``longest``."""

    def __init__(self, first: float, longest: float) -> None:
        self.first = max(0.0, first)
        self.longest = max(self.first, longest)
        self._next = self.first

    def next(self) -> float:
        d = self._next
        self._next = min(max(d, 0.05) * 2, self.longest)
        return d

    def reset(self) -> None:
        self._next = self.first


class _Spec:
    """What both consumers share: the name, the pattern, the subscribe options, and the
    rules for what a failure means (reconnect, or give up)."""

    def __init__(
        self,
        name: str,
        pattern: str,
        socket_path: Optional[str],
        socket: Optional[str],
        since_seq: Optional[int],
        ack_wait_ms: Optional[int],
        max_deliver: Optional[int],
        max_in_flight: Optional[int],
        reconnect: bool,
        reconnect_delay: float,
        max_reconnect_delay: float,
    ) -> None:
        if socket is not None and socket_path is not None and socket != socket_path:
            raise ValueError("give the socket once: socket_path= or socket=")
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("a consumer needs one event-type pattern ('*' for everything)")
        self.name = name
        self.pattern = pattern
        self.socket_path = socket_path if socket_path is not None else socket
        self.options = C.consumer_params(name, ack_wait_ms, max_deliver, max_in_flight)
        self.since_seq = since_seq
        self.reconnect = reconnect
        self.backoff = _Backoff(reconnect_delay, max_reconnect_delay)

    def subscribe_kwargs(self) -> Dict[str, Any]:
        """Keywords for ``subscribe``.  ``since_seq`` only places a *new* consumer, so it
        is sent until the first subscribe succeeds; afterwards the daemon's position rules."""
        kw: Dict[str, Any] = {k: v for k, v in self.options.items() if k != "consumer"}
        return dict(kw, consumer=self.name, since_seq=self.since_seq)

    def subscribed(self) -> None:
        self.since_seq = None
        self.backoff.reset()

    def lost(self, exc: BaseException) -> None:
        """A subscribed connection failed with ``exc``: re-raise it unless reconnecting."""
        if not self.reconnect:
            raise exc
        log.info("tradewire consumer %s: connection lost (%s); reconnecting", self.name, exc)

    def connect_failed(self, exc: BaseException) -> None:
        """A reconnect attempt failed: re-raise what retrying cannot mend."""
        if isinstance(exc, UntrustedSocket):
            raise exc
        if isinstance(exc, RPCError) and exc.type not in _TRANSIENT:
            raise exc
        log.debug("tradewire consumer %s: reconnect failed (%s)", self.name, exc)

    def settle_failed(self, what: str, seq: Any, exc: BaseException) -> None:
        """An ack/nak that could not reach the daemon: with reconnection the event simply
        comes again (at least once), so it is logged, not raised."""
        if not self.reconnect:
            raise exc
        log.info(
            "tradewire consumer %s: %s of seq %s lost with the connection (%s); it will be delivered again",
            self.name, what, seq, exc,
        )

    @staticmethod
    def delivery_of(item: Any, name: str) -> Optional[Event]:
        """The consumer event in a subscription item, or ``None`` for anything else."""
        if isinstance(item, EventsDropped):
            # consumer deliveries are never dropped (section 14); a notice is a daemon bug
            log.warning("tradewire consumer %s: unexpected events_dropped %r", name, dict(item))
            return None
        return item if isinstance(item, Event) else None


class DeliveryBase:
    """One delivery of one event to a consumer.

    ``.event`` (the :class:`~tradewire.Event`), ``.seq``, ``.attempt`` (1 for the
    first delivery, counting redeliveries), ``.consumer`` (the consumer's name), and
    ``.event_type``, ``.data``, ``.metadata`` of the event.  ``.settled`` is ``None``
    until the delivery was acknowledged (``"acked"``) or refused (``"naked"``).
    """

    def __init__(self, name: str, event: Event) -> None:
        self.event = event
        self.consumer: str = event.consumer or name
        self.attempt: int = event.attempt or 1
        seq = event.seq
        self.seq: int = seq if isinstance(seq, int) else -1
        self.settled: Optional[str] = None

    @property
    def event_type(self) -> Optional[str]:
        return self.event.event_type

    @property
    def data(self) -> Any:
        return self.event.data

    @property
    def metadata(self) -> Dict[str, Any]:
        return self.event.metadata

    def __repr__(self) -> str:
        state = f" {self.settled}" if self.settled else ""
        return (
            f"<{type(self).__name__} {self.consumer} seq={self.seq} attempt={self.attempt} "
            f"{self.event_type}{state}>"
        )


class Delivery(DeliveryBase):
    """A :class:`Consumer`'s delivery; see :class:`DeliveryBase` for the fields."""

    def __init__(self, owner: "Consumer", event: Event) -> None:
        super().__init__(owner.name, event)
        self._owner = owner

    def ack(self) -> int:
        """Acknowledge this event (``ack {consumer, seq}``, whichever member holds it now);
        returns how many the daemon acknowledged: 1, or 0 when it was no longer outstanding
        (already acknowledged, or a dead letter by now) or the connection was lost meanwhile
        (it will then come again)."""
        n = self._owner.ack(self.seq)
        if n:
            self.settled = "acked"
        return n

    def nak(self, delay_ms: Optional[int] = None, error: Optional[str] = None) -> bool:
        """Refuse this event: redelivered after ``delay_ms`` (at once without it), with
        ``attempt + 1``; ``error`` is kept as the dead letter's ``last_error`` should this
        be its last attempt.  True when the daemon took it."""
        ok = self._owner.nak(self.seq, delay_ms=delay_ms, error=error)
        if ok:
            self.settled = "naked"
        return ok


class ConsumerBase:
    """What :class:`Consumer` and :class:`tradewire.AsyncConsumer` share: the options,
    the current connection and subscription, and how settle answers are read."""

    def __init__(self, spec: _Spec, timeout: Optional[float], poll_interval: float) -> None:
        self._spec = spec
        self.timeout = timeout
        self.poll_interval = max(0.01, poll_interval)
        self._client: Any = None
        self._sub: Any = None
        self._opened = False
        #: how many times the consumer connected again after losing its connection
        self.reconnects = 0

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def pattern(self) -> str:
        return self._spec.pattern

    @property
    def client(self) -> Any:
        """The current connection (``None`` while reconnecting); it may publish too."""
        return self._client

    @property
    def subscription(self) -> Optional[str]:
        """The current subscription id (``"s-..."``), new after each reconnect."""
        sub = self._sub
        return sub.id if sub is not None else None

    @property
    def connected(self) -> bool:
        c = self._client
        return c is not None and c.connected

    def _not_connected(self) -> NotConnected:
        return NotConnected(f"consumer {self.name} is not connected", self._spec.socket_path)

    def _stopped(self) -> SubscriptionClosed:
        return SubscriptionClosed(f"consumer {self.name} stopped")

    def _ack_params(self, seq: Optional[int], up_to_seq: Optional[int] = None) -> Dict[str, Any]:
        return C.ack_params(self.name, seq, up_to_seq)

    def _nak_params(self, seq: int, delay_ms: Optional[int], error: Optional[str]) -> Dict[str, Any]:
        return C.nak_params(self.name, seq, delay_ms, error)

    def _settle_failed(self, method: str, params: Dict[str, Any], exc: BaseException) -> None:
        self._spec.settle_failed(method, params.get("seq", params.get("up_to_seq")), exc)

    @staticmethod
    def _acked(res: Optional[Dict[str, Any]]) -> int:
        return int(res.get("acked", 0)) if res else 0

    @staticmethod
    def _ok(res: Optional[Dict[str, Any]]) -> bool:
        return bool(res.get("ok")) if res else False

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<tradewire.{type(self).__name__} {self.name!r} {self.pattern!r} {state}>"


class Consumer(ConsumerBase):
    """A member of the durable consumer ``name`` over the events matching ``pattern``.

    >>> with Consumer("billing", "order.*", ack_wait_ms=10_000) as c:
    ...     for d in c:
    ...         handle(d.event)
    ...         d.ack()

    * The consumer is created by the first subscribe with its name: it starts after
      ``since_seq`` (default: with the next event published).  Later subscribes (other
      members, reconnects, restarts) join it where it is; the pattern cannot change.
    * ``ack_wait_ms`` (daemon default 30000): an event not acknowledged in time is
      delivered again (``attempt + 1``), to this member or another.  ``max_deliver``
      (default 5): after that many attempts it becomes a dead letter
      (``Client.get_dead_letters``).  ``max_in_flight`` (default 256): the most
      unacknowledged events out at once, over all members.
    * Iterating yields :class:`Delivery` objects; :meth:`get` waits with a timeout.
      Acknowledge with ``d.ack()`` / :meth:`ack`, or many at once with
      :meth:`ack_up_to`; refuse with ``d.nak(delay_ms, error=...)``.
    * ``reconnect=True`` (the default): when the connection goes (daemon stopped,
      restarted, crashed, or its ``shutdown`` notice) the consumer reconnects with
      backoff (``reconnect_delay`` doubling up to ``max_reconnect_delay``) and subscribes
      again; what was not acknowledged is delivered again.  An ack or nak that cannot
      reach the daemon returns 0 / False instead of raising.  With ``reconnect=False``
      the iteration ends at the daemon's shutdown notice and a lost connection raises
      :class:`~tradewire.ConnectionLost`, as a :class:`~tradewire.Subscription` does.
    * The first connect happens in :meth:`open` (or ``with``) and raises at once when the
      daemon cannot be reached (:class:`~tradewire.DaemonUnavailable`) or refuses the
      subscribe (:class:`~tradewire.InvalidParams`: a bad name or another pattern).
    * :meth:`stop` (safe from a signal handler or another thread) ends the iteration
      within ``poll_interval`` seconds.

    ``socket_path`` (or its alias ``socket``) and ``timeout`` are as for
    :class:`~tradewire.Client`.
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
    ) -> None:
        spec = _Spec(
            name, pattern, socket_path, socket, since_seq, ack_wait_ms, max_deliver, max_in_flight,
            reconnect, reconnect_delay, max_reconnect_delay,
        )
        super().__init__(spec, timeout, poll_interval)
        self._stop = threading.Event()

    # ------------------------------------------------------------- lifecycle

    def open(self) -> "Consumer":
        """Connect and subscribe (once; later calls do nothing)."""
        if not self._opened:
            self._connect()
            self._opened = True
        return self

    def _connect(self) -> None:
        client = Client(self._spec.socket_path, timeout=self.timeout)
        try:
            sub = client.subscribe(self.pattern, **self._spec.subscribe_kwargs())
        except BaseException:
            client.close()
            raise
        self._spec.subscribed()
        self._client, self._sub = client, sub

    def _drop(self) -> None:
        client, self._client, self._sub = self._client, None, None
        if client is not None:
            client.close()

    def stop(self) -> None:
        """End the iteration (within ``poll_interval``); safe from signal handlers and threads."""
        self._stop.set()

    def close(self) -> None:
        """Stop and close the connection: what this member did not acknowledge is
        delivered again (after ``ack_wait_ms``).  Idempotent."""
        self._stop.set()
        self._drop()

    def __enter__(self) -> "Consumer":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ deliveries

    def get(self, timeout: Optional[float] = None) -> Optional[Delivery]:
        """The next :class:`Delivery`, or ``None`` after ``timeout`` seconds (``None``:
        wait as long as it takes).  Raises :class:`~tradewire.SubscriptionClosed` once
        stopped (or, without reconnection, after the daemon's shutdown notice)."""
        self.open()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            if self._stop.is_set():
                raise self._stopped()
            rem = None if deadline is None else deadline - time.monotonic()
            if rem is not None and rem <= 0:
                return None
            sub = self._sub
            if sub is None:
                self._reconnect(rem)
                continue
            try:
                item = sub.get(timeout=self.poll_interval if rem is None else min(self.poll_interval, rem))
            except (SubscriptionClosed, NotConnected, Timeout, OSError) as e:
                if self._stop.is_set():
                    raise self._stopped() from None
                self._drop()
                self._spec.lost(e)
                continue
            ev = _Spec.delivery_of(item, self.name)
            if ev is not None:
                return Delivery(self, ev)

    def _reconnect(self, rem: Optional[float]) -> None:
        """One pause (cut short by :meth:`stop` or the caller's deadline), then one attempt."""
        pause = self._spec.backoff.next()
        if rem is not None and pause > rem:
            self._stop.wait(rem)
            return
        if self._stop.wait(pause):
            return
        try:
            self._connect()
        except (NotConnected, Timeout, OSError, RPCError) as e:
            self._spec.connect_failed(e)
            return
        self.reconnects += 1
        log.info("tradewire consumer %s: subscribed again (%s)", self.name, self.subscription)

    def __iter__(self) -> Iterator[Delivery]:
        return self

    def __next__(self) -> Delivery:
        try:
            d = self.get(None)
        except SubscriptionClosed:
            raise StopIteration from None
        assert d is not None
        return d

    # -------------------------------------------------------------- settling

    def _settle(self, method: str, params: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        try:
            if self._client is None:
                raise self._not_connected()
            res = self._client.call(method, params)
        except (NotConnected, Timeout, OSError) as e:
            self._settle_failed(method, params, e)
            return None
        return res if isinstance(res, dict) else {}

    def ack(self, seq: int) -> int:
        """``ack {consumer, seq}``: the number acknowledged (0 when it was not outstanding,
        or the connection was lost)."""
        return self._acked(self._settle("ack", self._ack_params(seq)))

    def ack_up_to(self, seq: int) -> int:
        """``ack {consumer, up_to_seq}``: acknowledge every event this member's connection
        has out with a seq up to ``seq``, in one request (batched acking); returns how many.
        Deliveries of an earlier connection (before a reconnect) are not among them: those
        went out again on their own."""
        return self._acked(self._settle("ack", self._ack_params(None, seq)))

    def nak(self, seq: int, delay_ms: Optional[int] = None, error: Optional[str] = None) -> bool:
        """``nak {consumer, seq, delay_ms?, error?}``: True when the daemon took it."""
        return self._ok(self._settle("nak", self._nak_params(seq, delay_ms, error)))
