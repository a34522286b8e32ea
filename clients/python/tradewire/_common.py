"""Pieces shared by the blocking and the asyncio client (no I/O here)."""
from __future__ import annotations

import json
import logging
from collections import deque
from typing import Any, Deque, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from .events import Event, EventsDropped

log = logging.getLogger("tradewire")

#: docs/PROTOCOL.md section 1: 1 MiB default max message, 64 MiB at most
DEFAULT_MAX_MESSAGE = 1024 * 1024
MAX_MAX_MESSAGE = 64 * 1024 * 1024
#: room for the envelope the daemon wraps around a maximal payload
MESSAGE_MARGIN = 64 * 1024

#: default client-side timeout for one call, in seconds
DEFAULT_TIMEOUT = 60.0
#: the daemon's default iteration deadline (run_pipeline timeout_ms)
DEFAULT_PIPELINE_TIMEOUT_MS = 300_000
#: extra client-side wait on top of a pipeline deadline
PIPELINE_GRACE = 15.0

#: events buffered for a subscription id nobody has claimed yet
ORPHAN_LIMIT = 10_000
#: how many recent seqs a multi-pattern subscription remembers for de-duplication
SEEN_WINDOW = 4096


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def encode(obj: Any) -> bytes:
    """One compact JSON text plus the newline (docs/PROTOCOL.md section 1)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8") + b"\n"


def decode(line: bytes) -> Any:
    """Parse one received line (without its ``\\n``); MISSING for blank or bad lines."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line.strip():
        return MISSING
    try:
        return json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        log.warning("tradewire: ignoring a line that is not JSON (%s): %.200r", e, line)
        return MISSING


def clean(**params: Any) -> Dict[str, Any]:
    """Params dict without the ``None`` values (absent == explicit null)."""
    return {k: v for k, v in params.items() if v is not None}


def consumer_params(
    consumer: Any,
    ack_wait_ms: Optional[int] = None,
    max_deliver: Optional[int] = None,
    max_in_flight: Optional[int] = None,
) -> Dict[str, Any]:
    """The ``subscribe`` params that make a subscription a durable consumer
    (docs/PROTOCOL.md section 11); the daemon checks the values."""
    if not isinstance(consumer, str) or not consumer:
        raise ValueError("a consumer needs a name (1-64 characters of A-Z a-z 0-9 _ . : -)")
    return clean(consumer=consumer, ack_wait_ms=ack_wait_ms, max_deliver=max_deliver, max_in_flight=max_in_flight)


def check_consumer_options(consumer: Any, patterns: Sequence[str], options: Dict[str, Any]) -> Dict[str, Any]:
    """``subscribe``'s consumer keywords: the extra params, or ``{}`` for a plain subscription."""
    if consumer is None:
        given = sorted(k for k, v in options.items() if v is not None)
        if given:
            raise ValueError(f"{', '.join(given)} only apply to a consumer: pass consumer=NAME")
        return {}
    if len(patterns) != 1:
        raise ValueError("a consumer subscribes to exactly one pattern")
    return consumer_params(consumer, **options)


def ack_params(consumer: str, seq: Optional[int], up_to_seq: Optional[int]) -> Dict[str, Any]:
    """``ack`` params: exactly one of ``seq`` and ``up_to_seq``."""
    if (seq is None) == (up_to_seq is None):
        raise ValueError("ack takes exactly one of seq and up_to_seq")
    return clean(consumer=consumer, seq=seq, up_to_seq=up_to_seq)


def nak_params(consumer: str, seq: int, delay_ms: Optional[int], error: Optional[str]) -> Dict[str, Any]:
    """``nak`` params (``delay_ms`` absent: redelivered at once)."""
    return clean(consumer=consumer, seq=seq, delay_ms=delay_ms, error=error)


def pipeline_timeout(default: Optional[float], timeout_ms: Optional[int]) -> Optional[float]:
    """Client-side wait for run_pipeline: the daemon's deadline plus a grace."""
    if default is None:
        return None
    ms = timeout_ms if isinstance(timeout_ms, (int, float)) and timeout_ms > 0 else DEFAULT_PIPELINE_TIMEOUT_MS
    return max(default, ms / 1000.0 + PIPELINE_GRACE)


def flatten_patterns(patterns: Sequence[Any]) -> List[str]:
    """``subscribe("a", "b")`` and ``subscribe(["a", "b"])`` alike; duplicates removed."""
    out: List[str] = []
    for p in patterns:
        items: Iterable[Any] = p if isinstance(p, (list, tuple, set, frozenset)) else (p,)
        for q in items:
            if q not in out:
                out.append(q)
    if not out:
        raise ValueError("subscribe needs at least one event-type pattern (use '*' for everything)")
    return out


def is_response(msg: Any) -> bool:
    return isinstance(msg, dict) and "id" in msg and ("result" in msg or "error" in msg)


def is_notification(msg: Any) -> bool:
    return isinstance(msg, dict) and isinstance(msg.get("method"), str) and "id" not in msg


def notification_item(method: str, params: Any) -> Tuple[Optional[str], Any]:
    """``(subscription id, Event | EventsDropped)`` for event-ish notifications, else ``(None, None)``."""
    if not isinstance(params, dict):
        return None, None
    sid = params.get("subscription")
    if method == "event":
        ev = params.get("event")
        if isinstance(ev, dict):
            delivery = params.get("delivery")
            return sid, Event(ev, sid, delivery if isinstance(delivery, dict) else None)
    elif method == "events_dropped":
        return sid, EventsDropped(params)
    return None, None


def merge_history(
    since_seq: int,
    fetched: Sequence[Tuple[str, str, Dict[str, Any]]],
) -> List[Any]:
    """Turn one get_event_history answer per pattern into a replay list.

    ``fetched`` holds ``(pattern, subscription id, history result)``.  The
    result mirrors what the daemon does for a single ``subscribe since_seq``:
    first an :class:`EventsDropped` with ``count: None`` when history no longer
    reaches back to ``since_seq + 1``, then the events in seq order (each seq
    once, attributed to the first pattern that matched it).
    """
    gap_last: Optional[int] = None
    first_sid: Optional[str] = fetched[0][1] if fetched else None
    for _p, _sid, h in fetched:
        oldest = h.get("oldest_seq") if isinstance(h, dict) else None
        if isinstance(oldest, int) and oldest > since_seq + 1:
            gap_last = max(gap_last or 0, oldest - 1)
    items: List[Any] = []
    if gap_last is not None:
        items.append(
            EventsDropped(
                {"subscription": first_sid, "count": None, "first_seq": since_seq + 1, "last_seq": gap_last}
            )
        )
    by_seq: Dict[int, Event] = {}
    for _p, sid, h in fetched:
        recs = h.get("events") if isinstance(h, dict) else None
        for rec in recs or ():
            if not isinstance(rec, dict):
                continue
            seq = rec.get("seq")
            if isinstance(seq, int) and seq > since_seq and seq not in by_seq:
                by_seq[seq] = Event.from_history(rec, sid)
    items.extend(by_seq[s] for s in sorted(by_seq))
    return items


class SubCore:
    """Buffer and state of one client-side subscription (one or more patterns).

    Not thread-safe by itself: the owning client guards it.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns: List[str] = list(patterns)
        self.ids: Dict[str, str] = {}
        #: params added to every ``subscribe`` of this core (a consumer's name and options)
        self.extra: Dict[str, Any] = {}
        self.dedupe = len(self.patterns) > 1
        self.replay: Deque[Any] = deque()
        self.live: Deque[Any] = deque()
        self._seen: Set[int] = set()
        self._seen_order: Deque[int] = deque()
        self._seen_limit = SEEN_WINDOW
        #: clean end: daemon shutdown, unsubscribed or client closed
        self.ended = False
        self.end_reason: Optional[str] = None
        #: the daemon's shutdown reason, when that is what ended it
        self.shutdown_reason: Optional[str] = None

    def set_replay(self, items: Sequence[Any]) -> None:
        self.replay.extend(items)
        self._seen_limit = max(SEEN_WINDOW, len(items) + SEEN_WINDOW)

    def push(self, item: Any) -> None:
        self.live.append(item)

    def end(self, reason: str, shutdown_reason: Optional[str] = None) -> None:
        if not self.ended:
            self.ended = True
            self.end_reason = reason
            if shutdown_reason is not None:
                self.shutdown_reason = shutdown_reason

    def pop(self) -> Any:
        """Next item or MISSING.  Multi-pattern subscriptions skip repeated seqs."""
        while True:
            if self.replay:
                item = self.replay.popleft()
            elif self.live:
                item = self.live.popleft()
            else:
                return MISSING
            if self.dedupe and isinstance(item, Event):
                seq = item.get("seq")
                if isinstance(seq, int):
                    if seq in self._seen:
                        continue
                    self._seen.add(seq)
                    self._seen_order.append(seq)
                    while len(self._seen_order) > self._seen_limit:
                        self._seen.discard(self._seen_order.popleft())
            return item

    def pending(self) -> int:
        return len(self.replay) + len(self.live)
