"""The blocking Client against a live daemon."""
from __future__ import annotations

import threading
import time

import pytest

import tradewire
from support import wait_until
from tradewire import (
    Client,
    DaemonUnavailable,
    Event,
    EventsDropped,
    InvalidParams,
    MethodNotFound,
    NotConnected,
    RPCError,
    SubscriptionClosed,
)

RUN_PIPELINE_KEYS = {
    "iteration",
    "iteration_id",
    "symbols",
    "duration_seconds",
    "market_data",
    "signals",
    "validated_signals",
    "approved_signals",
    "rejected_signals",
    "execution_results",
    "audit_report",
    "errors",
}
METHODS = {
    "subscribe",
    "unsubscribe",
    "publish",
    "run_pipeline",
    "get_stats",
    "get_event_history",
    "start_loop",
    "stop_loop",
    "get_status",
    "get_portfolio",
    "ping",
    "rpc.discover",
    "shutdown",
}


def drain(sub, timeout: float = 15.0) -> list:
    """Items until the subscription ends cleanly; fails (instead of hanging) after ``timeout``."""
    items = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "subscription did not end"
        try:
            item = sub.get(timeout=remaining)
        except SubscriptionClosed:
            return items
        if item is not None:
            items.append(item)


def test_ping(client: Client) -> None:
    assert client.ping() == {"pong": True}
    assert client.call("ping", {}) == {"pong": True}
    assert client.call("ping", []) == {"pong": True}


def test_status(client: Client, shared_daemon) -> None:
    st = client.get_status()
    assert st["api_level"] == tradewire.API_LEVEL == 2
    assert st["pid"] == shared_daemon.pid
    assert st["socket"] == shared_daemon.socket_path
    assert st["mode"] in ("async", "sync")
    assert isinstance(st["uptime_seconds"], (int, float))
    assert set(st["loop"]) >= {"running", "interval_seconds", "iterations", "last_iteration"}


def test_stats_keys(client: Client) -> None:
    st = client.get_stats()
    for k in (
        "total_event_types",
        "total_subscribers",
        "event_types",
        "total_events_published",
        "events_published",
        "events_delivered",
        "events_dropped",
        "handler_errors",
        "published_by_type",
        "connections",
        "history_size",
        "history_capacity",
        "uptime_seconds",
        "pipeline",
    ):
        assert k in st, k
    assert st["connections"] >= 1


def test_publish_then_history(client: Client, etype: str) -> None:
    payloads = [{"n": 1, "text": "héllo\nworld"}, [1, 2, 3], "plain", 4.5, None, True]
    results = [client.publish(etype, p, {"source": "pytest", "i": i}) for i, p in enumerate(payloads)]
    seqs = [r["seq"] for r in results]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for r in results:
        assert r["event_type"] == etype
        assert r["subscribers"] == 0
        assert isinstance(r["timestamp"], str)

    h = client.get_event_history(event_type=etype)
    assert [e["seq"] for e in h["events"]] == seqs
    assert [e["data"] for e in h["events"]] == payloads
    for i, e in enumerate(h["events"]):
        assert e["event_type"] == etype
        assert e["metadata"]["source"] == "pytest" and e["metadata"]["i"] == i
        assert e["subscriber_count"] == 0
        assert e["timestamp"] == results[i]["timestamp"]
    assert [e["data_type"] for e in h["events"]] == ["object", "array", "string", "number", "null", "boolean"]
    assert h["newest_seq"] >= seqs[-1] and h["oldest_seq"] <= seqs[0]
    assert h["capacity"] >= len(payloads)

    last2 = client.get_event_history(event_type=etype, limit=2)
    assert [e["seq"] for e in last2["events"]] == seqs[-2:]
    since = client.get_event_history(event_type=etype, since_seq=seqs[2])
    assert [e["seq"] for e in since["events"]] == seqs[3:]
    nodata = client.get_event_history(event_type=etype, include_data=False)
    assert all("data" not in e for e in nodata["events"])
    wild = client.get_event_history(event_type=etype[:-3] + "*")
    assert [e["seq"] for e in wild["events"]] == seqs


def test_subscribe_receives_in_order(client: Client, etype: str) -> None:
    sub = client.subscribe(etype)
    assert sub.id and sub.id.startswith("s-")
    published = []
    for i in range(20):
        r = client.publish(etype, {"i": i, "blob": "x" * i})
        assert r["subscribers"] == 1
        published.append(r["seq"])
    got = [sub.get(timeout=10) for _ in range(20)]
    assert all(isinstance(e, Event) for e in got)
    assert [e["data"] for e in got] == [{"i": i, "blob": "x" * i} for i in range(20)]
    assert [e.seq for e in got] == published
    assert all(e.subscription == sub.id and e["event_type"] == etype for e in got)
    assert set(got[0]) >= {"seq", "event_type", "timestamp", "data", "metadata"}
    assert sub.get(timeout=0.2) is None
    assert client.unsubscribe(sub) == {"removed": 1}
    with pytest.raises(SubscriptionClosed):
        sub.get(timeout=1)
    assert list(sub) == []


def test_subscribe_from_another_connection(socket_path: str, etype: str) -> None:
    with Client(socket_path) as listener, Client(socket_path) as publisher:
        sub = listener.subscribe(etype + ".*")
        seqs = [publisher.publish(f"{etype}.{k}", k)["seq"] for k in ("a", "b", "c")]
        publisher.publish(etype + "X", "not matching")
        events = [sub.get(timeout=10) for _ in range(3)]
        assert None not in events
        assert [e.seq for e in events] == seqs
        assert [e.data for e in events] == ["a", "b", "c"]
        assert sub.get(timeout=0.3) is None


def test_subscribe_since_seq_replays_then_live(client: Client, etype: str) -> None:
    seqs = [client.publish(etype, i)["seq"] for i in range(5)]
    sub = client.subscribe(etype, since_seq=seqs[1])
    live = client.publish(etype, 99)["seq"]
    got = [sub.get(timeout=10) for _ in range(4)]
    assert [e.seq for e in got] == seqs[2:] + [live]
    assert [e.data for e in got] == [2, 3, 4, 99]
    sub.close()


def test_multi_pattern_subscription_merges_in_seq_order(client: Client, etype: str) -> None:
    a, b = etype + ".a", etype + ".b"
    before = [client.publish(t, {"t": t, "i": i})["seq"] for i, t in enumerate([a, b, a, b, etype + ".c"])]
    sub = client.subscribe(a, b, etype + ".*", since_seq=before[0] - 1)
    assert set(sub.ids) == {a, b, etype + ".*"}
    after = [client.publish(t, {"t": t, "i": 10 + i})["seq"] for i, t in enumerate([b, a])]
    got = [sub.get(timeout=10) for _ in range(7)]
    # each event once, even though it matches two patterns; replay in seq order, then live
    assert [e.seq for e in got] == before + after
    assert sub.get(timeout=0.3) is None
    removed = client.unsubscribe(sub)
    assert removed == {"removed": 3}


def test_subscribe_twice_same_pattern_same_subscription(client: Client, etype: str) -> None:
    s1 = client.subscribe(etype)
    s2 = client.subscribe(etype)
    assert s1.id == s2.id
    client.unsubscribe(s1)


def test_unsubscribe_by_pattern_and_id(client: Client, etype: str) -> None:
    s = client.subscribe(etype)
    assert client.unsubscribe(event_type=etype) == {"removed": 1}
    assert client.unsubscribe(event_type=etype) == {"removed": 0}
    s2 = client.subscribe(etype + "x")
    assert client.unsubscribe(s2.id) == {"removed": 1}
    with pytest.raises(InvalidParams):
        client.unsubscribe()
    assert s.ended and s2.ended


def test_notifications_buffered_while_waiting_for_a_response(client: Client, etype: str) -> None:
    sub = client.subscribe(etype)
    for i in range(50):
        client.publish(etype, i)
    # many calls while events pile up: all responses still match their ids
    for _ in range(5):
        assert client.ping() == {"pong": True}
    assert [sub.get(timeout=10).data for _ in range(50)] == list(range(50))


def test_errors_are_typed(client: Client) -> None:
    with pytest.raises(MethodNotFound) as ei:
        client.call("no_such_method")
    assert ei.value.code == -32601 and ei.value.type == "method_not_found"
    assert isinstance(ei.value, RPCError)

    with pytest.raises(InvalidParams) as ei2:
        client.publish(123)  # type: ignore[arg-type]
    assert ei2.value.code == -32602 and ei2.value.type == "invalid_params"
    assert ei2.value.errors and all("path" in e for e in ei2.value.errors)

    with pytest.raises(InvalidParams) as ei3:
        client.run_pipeline(["bad sym!"])
    assert ei3.value.code == -32602
    assert any(str(e.get("path", "")).startswith("/symbols") for e in ei3.value.errors)

    with pytest.raises(InvalidParams):
        client.call("ping", {"bogus": 1})
    with pytest.raises(InvalidParams):
        client.get_event_history(limit=-1)
    with pytest.raises(InvalidParams):
        client.subscribe("x", since_seq=-1)
    with pytest.raises(InvalidParams):
        client.run_pipeline(["AAPL"], strategy="NoSuchStrategy")
    with pytest.raises(InvalidParams):
        client.publish("executed_ready", {"not": "a list"})
    # the connection is still fine after errors
    assert client.ping() == {"pong": True}


def test_run_pipeline_result_has_every_key(client: Client) -> None:
    r = client.run_pipeline(["AAPL", "MSFT"])
    assert set(r) >= RUN_PIPELINE_KEYS
    assert "dry_run" in r and r["dry_run"] is False
    assert r["symbols"] == ["AAPL", "MSFT"]
    assert isinstance(r["iteration"], int) and isinstance(r["iteration_id"], str)
    assert set(r["market_data"]) <= {"AAPL", "MSFT"}
    for md in r["market_data"].values():
        assert set(md) >= {"bars", "first_timestamp", "last_timestamp", "last_close"}
    assert len(r["approved_signals"]) + len(r["rejected_signals"]) == len(r["validated_signals"])
    assert r["audit_report"]["report_type"] == "iteration"
    assert isinstance(r["errors"], list)
    for x in r["execution_results"]:
        assert set(x) >= {"signal", "order_id", "executed", "execution_time", "error", "fill_price", "quantity", "side",
                          "commission"}


def test_run_pipeline_upper_cases_and_publishes_the_chain(socket_path: str) -> None:
    with Client(socket_path) as c:
        sub = c.subscribe("*_ready")
        r = c.run_pipeline(["aapl"], dry_run=True)
        assert r["symbols"] == ["AAPL"] and r["dry_run"] is True
        for x in r["execution_results"]:
            assert x["executed"] is False and x["order_id"] is None
        types = []
        deadline = time.monotonic() + 10
        while len(types) < 6 and time.monotonic() < deadline:
            ev = sub.get(timeout=1)
            if ev is not None and ev.iteration == r["iteration"]:
                types.append(ev.event_type)
                assert ev.metadata["iteration_id"] == r["iteration_id"]
        assert types == ["data_ready", "signals_ready", "validated_ready", "approved_ready", "executed_ready",
                         "audit_ready"]


def test_discover_lists_every_method(client: Client) -> None:
    doc = client.discover()
    assert str(doc.get("openrpc", "")).startswith("1.")
    names = {m["name"] for m in doc["methods"]}
    assert names >= METHODS


def test_loop_start_stop(daemon_factory) -> None:
    d = daemon_factory.start()
    with Client(d.socket_path) as c:
        with pytest.raises(InvalidParams):
            c.start_loop(interval_seconds=0.01)
        r = c.start_loop(interval_seconds=0.2, symbols=["AAPL"])
        assert r["running"] is True and r["interval_seconds"] == pytest.approx(0.2)
        wait_until(lambda: c.get_status()["loop"]["iterations"] >= 1, timeout=20, what="a loop iteration")
        st = c.stop_loop()
        assert st["running"] is False and st["iterations"] >= 1
        assert c.get_status()["loop"]["running"] is False


def test_subscription_get_timeout_and_generic_call(client: Client, etype: str) -> None:
    sub = client.subscribe(etype)
    t0 = time.monotonic()
    assert sub.get(timeout=0.3) is None
    assert 0.25 <= time.monotonic() - t0 < 5
    res = client.call("publish", {"event_type": etype, "data": {"via": "call"}})
    assert sub.get(timeout=5).data == {"via": "call"}
    assert res["event_type"] == etype


def test_thread_publishes_while_main_thread_iterates(socket_path: str, etype: str) -> None:
    with Client(socket_path) as c:
        sub = c.subscribe(etype)

        def producer() -> None:
            for i in range(30):
                c.publish(etype, i)

        t = threading.Thread(target=producer)
        t.start()
        got = [sub.get(timeout=10).data for _ in range(30)]
        t.join(10)
        assert got == list(range(30))


def test_daemon_unavailable_names_socket_and_how_to_start(tmp_path) -> None:
    missing = str(tmp_path / "nope.sock")
    with pytest.raises(DaemonUnavailable) as ei:
        Client(missing)
    assert isinstance(ei.value, ConnectionError) and isinstance(ei.value, NotConnected)
    msg = str(ei.value)
    assert missing in msg and "make run" in msg and "tradewired" in msg


def test_default_socket_path_rules(monkeypatch) -> None:
    from tradewire import default_socket_path

    monkeypatch.delenv("TRADEWIRE_SOCKET", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    import os

    assert default_socket_path() == f"/tmp/tradewire-{os.getuid()}/tradewire.sock"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/77")
    assert default_socket_path() == "/run/user/77/tradewire.sock"
    monkeypatch.setenv("TRADEWIRE_SOCKET", "/tmp/x/y.sock")
    assert default_socket_path() == "/tmp/x/y.sock"
    assert default_socket_path("/explicit.sock") == "/explicit.sock"
    assert tradewire.Client("/explicit.sock", connect=False).socket_path == "/explicit.sock"


def test_history_gap_is_reported(daemon_factory) -> None:
    # Pinned to --ephemeral (whatever TW_TEST_STORAGE says): the gap and "capacity": 5 come from
    # the in-memory history ring; with a journal, history is the journal and capacity its retention.
    d = daemon_factory.start(history_capacity=5, extra=["--ephemeral"])
    with Client(d.socket_path) as c:
        seqs = [c.publish("gap.test", i)["seq"] for i in range(10)]
        h = c.get_event_history()
        assert h["capacity"] == 5 and [e["seq"] for e in h["events"]] == seqs[-5:]
        sub = c.subscribe("gap.test", since_seq=seqs[0])
        notice = sub.get(timeout=10)
        assert isinstance(notice, EventsDropped)
        assert notice.count is None and notice.history_gap
        assert notice.first_seq == seqs[0] + 1 and notice.last_seq == seqs[5] - 1
        assert [sub.get(timeout=10).data for _ in range(5)] == [5, 6, 7, 8, 9]
        sub.close()

        seen = []
        sub2 = c.subscribe("gap.*", "gap.test", since_seq=0, on_dropped=seen.append)
        assert [sub2.get(timeout=10).data for _ in range(5)] == [5, 6, 7, 8, 9]
        assert len(seen) == 1 and seen[0].count is None and seen[0].last_seq == seqs[5] - 1


def test_shutdown_ends_subscriptions_cleanly(daemon_factory) -> None:
    d = daemon_factory.start()
    with Client(d.socket_path) as watcher, Client(d.socket_path) as admin:
        sub = watcher.subscribe("*")
        assert admin.shutdown() == {"ok": True}
        items = drain(sub)  # ends cleanly, does not raise
        assert all(isinstance(i, (Event, EventsDropped)) for i in items)
        assert sub.shutdown_reason is not None
        assert watcher.shutdown_reason is not None
        with pytest.raises((NotConnected, tradewire.ShuttingDown)):
            watcher.ping()
    assert d.proc.wait(15) == 0


def test_portfolio_and_replay(daemon_factory, tmp_path) -> None:
    """get_portfolio shows the book; a replay of a recorded iteration changes nothing and,
    with the same agents, finds no difference (with --ephemeral there is nothing to replay)."""
    data_dir = tmp_path / "book"
    d = daemon_factory.start(extra=["--data-dir", str(data_dir), "--seed", "7", "--symbols",
                                    "AAPL,MSFT,GOOGL,SPY,QQQ,NVDA"])
    with Client(d.socket_path) as c:
        first = c.run_pipeline()
        book = c.get_portfolio()
        assert set(book) >= {"cash", "equity", "positions", "realized_pnl", "commissions", "orders", "risk_budget",
                             "as_of_seq"}
        assert book["orders"] == sum(1 for x in first["execution_results"] if x["executed"])
        for p in book["positions"]:
            assert set(p) >= {"symbol", "qty", "avg_price", "last_price", "market_value", "unrealized_pnl"}
        r = c.run_pipeline(replay=first["iteration_id"])
        assert r["dry_run"] is True and r["replay"] == {"of": first["iteration_id"], "differences": []}
        again = c.get_portfolio()
        assert {k: v for k, v in again.items() if k != "as_of_seq"} == \
            {k: v for k, v in book.items() if k != "as_of_seq"}
    e = daemon_factory.start(extra=["--ephemeral"])
    with Client(e.socket_path) as c:
        with pytest.raises(RPCError) as info:
            c.run_pipeline(replay="nothing-1")
        assert info.value.code == -32012
