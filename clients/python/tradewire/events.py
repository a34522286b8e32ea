"""Objects yielded by subscriptions: :class:`Event` and :class:`EventsDropped`."""
from __future__ import annotations

from typing import Any, Dict, Optional

__all__ = ["Event", "EventsDropped"]

#: keys that history records add to the Event object (docs/PROTOCOL.md section 3)
HISTORY_ONLY_KEYS = ("subscriber_count", "data_type")


class Event(dict):
    """One bus event: the Event object of docs/PROTOCOL.md section 3, as a dict.

    ``{"seq", "event_type", "timestamp", "data", "metadata"}`` -- plus, for
    convenience, attribute access to those keys and ``.subscription``: the
    id (``"s-..."``) of the subscription that delivered it.  ``json.dumps``
    of an Event gives exactly the daemon's Event object.

    An event delivered through a durable consumer (docs/PROTOCOL.md section 11)
    also has ``.delivery``: the notification's ``{"consumer", "attempt"}``
    (``None`` for a plain subscription), with ``.consumer`` and ``.attempt``.
    """

    kind = "event"

    def __init__(
        self, obj: Any = (), subscription: Optional[str] = None, delivery: Optional[Dict[str, Any]] = None
    ) -> None:
        super().__init__(obj)
        self.subscription = subscription
        self.delivery = delivery

    @property
    def consumer(self) -> Optional[str]:
        """``delivery.consumer``: the consumer that delivered this event, else ``None``."""
        c = self.delivery.get("consumer") if self.delivery is not None else None
        return c if isinstance(c, str) else None

    @property
    def attempt(self) -> Optional[int]:
        """``delivery.attempt`` (1 for a first delivery), else ``None``."""
        a = self.delivery.get("attempt") if self.delivery is not None else None
        return a if isinstance(a, int) and not isinstance(a, bool) else None

    @property
    def seq(self) -> Optional[int]:
        return self.get("seq")

    @property
    def event_type(self) -> Optional[str]:
        return self.get("event_type")

    @property
    def timestamp(self) -> Optional[str]:
        return self.get("timestamp")

    @property
    def data(self) -> Any:
        return self.get("data")

    @property
    def metadata(self) -> Dict[str, Any]:
        m = self.get("metadata")
        return m if isinstance(m, dict) else {}

    @property
    def iteration(self) -> Optional[int]:
        """``metadata.iteration`` (set on pipeline events), else ``None``."""
        return self.metadata.get("iteration")

    def __repr__(self) -> str:
        extra = f", delivery={self.delivery!r}" if self.delivery is not None else ""
        return f"Event(subscription={self.subscription!r}{extra}, {dict.__repr__(self)})"

    @classmethod
    def from_history(cls, record: Dict[str, Any], subscription: Optional[str] = None) -> "Event":
        """An Event from a get_event_history record (drops the history-only keys)."""
        ev = cls({k: v for k, v in record.items() if k not in HISTORY_ONLY_KEYS}, subscription)
        return ev


class EventsDropped(dict):
    """An ``events_dropped`` notification (docs/PROTOCOL.md sections 6 and 8).

    ``{"subscription", "count", "first_seq", "last_seq"}``: events with seq in
    ``first_seq..last_seq`` were skipped for this subscription.  ``count`` is
    ``None`` (``.history_gap`` true) when a ``since_seq`` reached further back
    than the daemon's history: those events are gone for good.  Otherwise the
    gap can usually be fetched with ``get_event_history(since_seq=first_seq - 1)``.
    """

    kind = "events_dropped"

    @property
    def subscription(self) -> Optional[str]:
        return self.get("subscription")

    @property
    def count(self) -> Optional[int]:
        return self.get("count")

    @property
    def first_seq(self) -> Optional[int]:
        return self.get("first_seq")

    @property
    def last_seq(self) -> Optional[int]:
        return self.get("last_seq")

    @property
    def history_gap(self) -> bool:
        """True when the skipped events are no longer in the daemon's history."""
        return self.get("count") is None

    def __repr__(self) -> str:
        return f"EventsDropped({dict.__repr__(self)})"
