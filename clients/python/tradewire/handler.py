"""``run_handler``: a remote event handler that survives daemon restarts."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from .client import Client, Subscription
from .errors import NotConnected, RPCError, SubscriptionClosed, Timeout, UntrustedSocket
from .events import Event, EventsDropped

__all__ = ["run_handler"]

log = logging.getLogger("tradewire.handler")

#: a daemon whose start time moved by more than this (seconds) is a new daemon
_START_TOLERANCE = 2.0


class _Identity:
    """What identifies one seq space: the daemon's journal (``journal_id``, kept across
    restarts), else one daemon run (its pid and, roughly, when it started)."""

    def __init__(self, status: Dict[str, Any]) -> None:
        self.pid = status.get("pid")
        up = status.get("uptime_seconds")
        self.started = time.monotonic() - float(up) if isinstance(up, (int, float)) else None
        journal = status.get("journal")
        jid = journal.get("journal_id") if isinstance(journal, dict) else None
        self.journal_id: Optional[str] = jid if isinstance(jid, str) else None

    def same_as(self, other: "_Identity") -> bool:
        if self.journal_id is not None or other.journal_id is not None:
            # A journaled daemon keeps its seqs across restarts: the same journal is the
            # same seq space, whatever the pid.
            return self.journal_id == other.journal_id
        if self.pid != other.pid:
            return False
        if self.started is not None and other.started is not None:
            return abs(self.started - other.started) <= _START_TOLERANCE
        return True


class _CallbackFailed(Exception):
    """Carries an exception raised by the user's callback past the retry logic."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(exc)
        self.exc = exc


def _history_newest(client: Client) -> Optional[int]:
    h = client.get_event_history(limit=1, include_data=False)
    n = h.get("newest_seq") if isinstance(h, dict) else None
    return n if isinstance(n, int) else None


def _fetch_gap(
    client: Client, sub: Subscription, notice: EventsDropped
) -> Tuple[List[Event], bool]:
    """Events ``notice`` says were skipped, from history: ``(events, complete)``."""
    first, last = notice.first_seq, notice.last_seq
    if not isinstance(first, int) or not isinstance(last, int):
        return [], False
    pattern = next((p for p, i in sub.ids.items() if i == notice.subscription), None)
    patterns = [pattern] if pattern is not None else sub.patterns
    found: Dict[int, Event] = {}
    complete = True
    for p in patterns:
        h = client.get_event_history(event_type=p, since_seq=first - 1)
        oldest = h.get("oldest_seq")
        if isinstance(oldest, int) and oldest > first:
            complete = False
        for rec in h.get("events") or ():
            seq = rec.get("seq")
            if isinstance(seq, int) and first <= seq <= last and seq not in found:
                found[seq] = Event.from_history(rec, sub.ids.get(p))
    return [found[s] for s in sorted(found)], complete


def run_handler(
    pattern: Union[str, Sequence[str]],
    callback: Callable[[Event], Any],
    *,
    socket_path: Optional[str] = None,
    since_seq: Optional[int] = None,
    reconnect_delay: float = 0.5,
    max_reconnect_delay: float = 10.0,
    stop_event: Optional[threading.Event] = None,
    on_gap: Optional[Callable[[EventsDropped], Any]] = None,
    on_connect: Optional[Callable[[Dict[str, Any]], Any]] = None,
    on_disconnect: Optional[Callable[[BaseException], Any]] = None,
    poll_interval: float = 0.5,
    timeout: Optional[float] = 30.0,
) -> Optional[int]:
    """Run ``callback(event)`` for every event matching ``pattern``, for good.

    ``pattern`` is one event-type pattern or a list of them.  The helper
    connects, subscribes and calls ``callback`` with each :class:`Event` in
    seq order, remembering the last seq handled.  When the connection goes
    (daemon stopped, restarted, crashed) it reconnects with exponential
    backoff (``reconnect_delay`` doubling up to ``max_reconnect_delay``) and
    resubscribes with ``since_seq=<last seq handled>``, so events published
    while it was away are replayed from the daemon's history -- nothing is
    missed as long as history still holds the gap.

    * A daemon restarted on the same journal (``get_status`` ``journal.journal_id``
      unchanged) keeps its seqs: the helper resumes with ``since_seq`` and misses
      nothing.  An ephemeral daemon that restarted, or a different journal,
      starts a new seq space: the helper compares the identity (the
      ``journal_id``, else ``pid`` and start time) on each connect, and for a new
      one resubscribes with ``since_seq=0`` (everything the new daemon holds).
    * ``since_seq``: where to start on the first connect; default: events
      published from now on.
    * ``events_dropped`` (this handler fell behind): the skipped events are
      fetched from history and handled, in order, before anything newer.  When
      history no longer has them (``count`` null, or evicted) ``on_gap(notice)``
      is called (default: a warning in the ``tradewire.handler`` log).
    * ``on_connect(info)`` is called after each successful subscribe with
      ``{"pid", "since_seq", "restarted", "attempt", "journal_id"}``
      (``restarted``: a new seq space); ``on_disconnect(exc)``
      when a subscribed connection is lost, before the backoff wait (``exc``:
      :class:`~tradewire.SubscriptionClosed` after the daemon's shutdown notice,
      :class:`~tradewire.ConnectionLost` without one, or
      :class:`~tradewire.ShuttingDown`).  Failed connects are logged (a warning
      for the first of a streak) and retried; they do not call ``on_disconnect``.
    * Stops when ``stop_event`` (a :class:`threading.Event`) is set -- checked
      every ``poll_interval`` seconds -- and returns the last seq handled.
      Without a ``stop_event`` it runs until interrupted.
    * An exception from ``callback`` closes the connection and propagates; the
      failed event was not counted as handled.  An :class:`~tradewire.RPCError`
      from the daemon while subscribing (a bad pattern, say) propagates too.
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    stop = stop_event or threading.Event()
    last_seq: Optional[int] = since_seq
    identity: Optional[_Identity] = None
    delay = reconnect_delay
    attempt = 0
    failures = 0

    def deliver(ev: Event) -> None:
        try:
            callback(ev)
        except Exception as exc:  # not a connection problem, even if it is an OSError
            raise _CallbackFailed(exc) from exc

    def gap(notice: EventsDropped) -> None:
        if on_gap is not None:
            on_gap(notice)
        else:
            log.warning(
                "tradewire handler %s: events %s..%s are gone from the daemon's history and were missed",
                patterns, notice.first_seq, notice.last_seq,
            )

    while not stop.is_set():
        attempt += 1
        client: Optional[Client] = None
        subscribed = False
        try:
            client = Client(socket_path, timeout=timeout)
            now = _Identity(client.get_status())
            restarted = False
            if identity is None:
                # first connect: from since_seq, else from the newest event now
                resume = since_seq if since_seq is not None else (_history_newest(client) or 0)
            else:
                restarted = not now.same_as(identity)
                if not restarted and last_seq:
                    newest = _history_newest(client)
                    restarted = newest is not None and newest < last_seq  # seq went backwards
                if restarted:
                    log.info("tradewire handler %s: a new seq space (pid %s, journal %s); replaying all it holds",
                             patterns, now.pid, now.journal_id)
                resume = 0 if restarted else (last_seq or 0)
            identity = now
            last_seq = resume
            sub = client.subscribe(*patterns, since_seq=resume)
            subscribed = True
            delay = reconnect_delay
            failures = 0
            log.info("tradewire handler %s: subscribed on %s since seq %s", patterns, client.socket_path, resume)
            if on_connect is not None:
                on_connect({"pid": now.pid, "since_seq": resume, "restarted": restarted, "attempt": attempt,
                            "journal_id": now.journal_id})
            while not stop.is_set():
                item = sub.get(timeout=poll_interval)
                if item is None:
                    continue
                if isinstance(item, EventsDropped):
                    if item.history_gap:
                        gap(item)
                        continue
                    events, complete = _fetch_gap(client, sub, item)
                    if not complete:
                        gap(item)
                    for ev in events:
                        deliver(ev)
                        last_seq = max(last_seq or 0, ev.seq or 0)
                    continue
                deliver(item)
                seq = item.seq
                if isinstance(seq, int):
                    last_seq = max(last_seq or 0, seq)
        except _CallbackFailed as failed:
            raise failed.exc
        except UntrustedSocket:
            # an impostor (another user's server or directory) is not a daemon that is down:
            # retrying would wait on it forever
            raise
        except (NotConnected, SubscriptionClosed, Timeout, OSError) as e:
            if stop.is_set():
                break
            if subscribed:
                log.info("tradewire handler %s: disconnected (%s); reconnecting", patterns, e)
                if on_disconnect is not None:
                    on_disconnect(e)
            else:
                failures += 1
                (log.warning if failures == 1 else log.debug)(
                    "tradewire handler %s: %s; retrying (backoff up to %.1f s)", patterns, e, max_reconnect_delay)
            stop.wait(delay)
            delay = min(max(delay, 0.05) * 2, max_reconnect_delay)
        except RPCError as e:
            # draining or overloaded daemon: retry later; any other error is the caller's to see
            if e.type not in ("shutting_down", "overloaded") or stop.is_set():
                raise
            if subscribed and on_disconnect is not None:
                on_disconnect(e)
            stop.wait(delay)
            delay = min(max(delay, 0.05) * 2, max_reconnect_delay)
        finally:
            if client is not None:
                client.close()
    return last_seq
