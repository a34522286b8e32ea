"""StageWorker against a scripted fake daemon (clients/testing/stage_peer.py).

No tradewired needed: the peer plays the daemon's side of docs/PROTOCOL.md
section 9 (register_stage, stage.handle, $/cancelRequest, dropped connections).
"""
from __future__ import annotations

import asyncio
import importlib.util
import logging
import math
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, List, Optional

import pytest

from support import REPO_ROOT, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "testing"))
from stage_peer import StagePeer  # noqa: E402

import tradewire  # noqa: E402
from tradewire import InvalidParams, RPCError, StageWorker  # noqa: E402

CONTRIB = REPO_ROOT / "contrib" / "python"


# ---------------------------------------------------------------------------
# fixtures


class Runner:
    """A worker's run() (or run_async()) in a thread; remembers what it raised."""

    def __init__(self, worker: StageWorker, use_async: bool = False) -> None:
        self.worker = worker
        self.use_async = use_async
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._target, name="stage-worker-under-test", daemon=True)

    def _target(self) -> None:
        try:
            if self.use_async:
                asyncio.run(self.worker.run_async())
            else:
                self.worker.run()
        except BaseException as e:  # noqa: BLE001 - the test looks at it
            self.error = e

    def start(self) -> "Runner":
        self.thread.start()
        return self

    def join(self, timeout: float = 5.0) -> Optional[BaseException]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the worker did not return"
        return self.error

    def stop(self, timeout: float = 5.0) -> None:
        self.worker.stop()
        self.join(timeout)


@pytest.fixture
def peer():
    with StagePeer() as p:
        yield p


@pytest.fixture
def run_worker():
    runners: List[Runner] = []

    def start(worker: StageWorker, use_async: bool = False) -> Runner:
        r = Runner(worker, use_async).start()
        runners.append(r)
        return r

    yield start
    for r in runners:
        r.worker.stop()
        r.thread.join(5)
        assert not r.thread.is_alive(), "a worker outlived its test"


def make_worker(peer: StagePeer, **kw: Any) -> StageWorker:
    opts = dict(reconnect_delay=0.02, max_reconnect_delay=0.1, timeout=5.0, stop_grace=0.5)
    opts.update(kw)
    return StageWorker(peer.socket_path, **opts)


def registered(peer: StagePeer, n: int = 1) -> tuple:
    conn = peer.accept()
    return conn, conn.wait_registered(n)


both_modes = pytest.mark.parametrize("use_async", [False, True], ids=["threads", "asyncio"])


# ---------------------------------------------------------------------------
# declaring and registering


def test_register_sends_only_the_options_given(peer, run_worker) -> None:
    w = make_worker(peer)

    @w.stage("risk", name="plain")
    def plain(call):
        return call.output

    @w.stage("strategy", name="full", mode="replace", timeout_ms=500, on_failure="fallback", concurrency=3,
             durable=True)
    def full(call):
        return []

    run_worker(w)
    conn, regs = registered(peer, 2)
    assert [r["params"] for r in conn.registrations] == [
        {"stage": "risk", "name": "plain"},
        {"stage": "strategy", "name": "full", "mode": "replace", "timeout_ms": 500, "on_failure": "fallback",
         "concurrency": 3, "durable": True},
    ]
    assert [r["registration"] for r in regs] == ["r-1", "r-2"]
    wait_until(lambda: w.connected, what="connected")
    assert {k: (s.stage, s.name) for k, s in w.registrations.items()} == {
        "r-1": ("risk", "plain"), "r-2": ("strategy", "full")}


def test_declaration_errors() -> None:
    w = StageWorker("/nonexistent/x.sock")
    with pytest.raises(ValueError):
        w.stage("portfolio", name="x")(lambda c: None)
    with pytest.raises(ValueError):
        w.stage("risk", name="x", concurrency=0)(lambda c: None)
    with pytest.raises(ValueError):
        w.stage("risk", name="x", mode="instead")(lambda c: None)
    w.stage("risk", name="x")(lambda c: None)
    with pytest.raises(ValueError):
        w.stage("risk", name="x")(lambda c: None)
    with pytest.raises(ValueError):
        StageWorker("/nonexistent/x.sock").run()  # nothing declared

    a = StageWorker("/nonexistent/x.sock")

    @a.stage("risk", name="co")
    async def co(call):
        return None

    with pytest.raises(TypeError, match="run_async"):
        a.run()


# ---------------------------------------------------------------------------
# calls


@both_modes
def test_calls_are_routed_by_registration(peer, run_worker, use_async) -> None:
    w = make_worker(peer)
    seen: List[Any] = []

    @w.stage("risk", name="veto")
    def veto(call):
        seen.append(call)
        return [dict(s, approved=False, rejection_reason="veto") for s in call.output]

    @w.stage("strategy", name="strat", mode="replace")
    def strat(call):
        seen.append(call)
        return [{"symbol": sym, "action": "HOLD", "strategy_name": "TrendFollowing", "confidence": 0.5}
                for sym in sorted(call.input)]

    run_worker(w, use_async)
    conn, (r_risk, r_strat) = registered(peer, 2)
    c1 = conn.call(r_strat["registration"], {"AAA": {"bars": []}, "BBB": {"bars": []}}, stage="strategy",
                   name="strat", mode="replace", omit_output=True, iteration=7, iteration_id="it-7")
    c2 = conn.call(r_risk["registration"], {"signals": []}, [{"symbol": "AAA", "approved": True}],
                   stage="risk", name="veto", dry_run=True, deadline_in=3.0,
                   account={"cash": 1.0, "equity": 2.0, "positions": {}})
    rep1, rep2 = conn.wait_reply(c1), conn.wait_reply(c2)
    assert rep1 == {"jsonrpc": "2.0", "id": c1, "result": [
        {"symbol": "AAA", "action": "HOLD", "strategy_name": "TrendFollowing", "confidence": 0.5},
        {"symbol": "BBB", "action": "HOLD", "strategy_name": "TrendFollowing", "confidence": 0.5}]}
    assert rep2["result"] == [{"symbol": "AAA", "approved": False, "rejection_reason": "veto"}]

    by_id = {c.id: c for c in seen}
    s, r = by_id[c1], by_id[c2]
    assert (s.stage, s.name, s.mode, s.registration) == ("strategy", "strat", "replace", r_strat["registration"])
    assert s.iteration == 7 and s.iteration_id == "it-7" and s.output is None and s.dry_run is False
    assert (r.stage, r.name, r.mode, r.registration) == ("risk", "veto", "after", r_risk["registration"])
    assert r.dry_run is True and r.account == {"cash": 1.0, "equity": 2.0, "positions": {}}
    assert r.id.startswith("c-")
    assert isinstance(r.deadline, datetime) and r.deadline.tzinfo is not None
    assert 0 < r.time_left() <= 3.0
    assert not r.cancelled.is_set()


def test_parse_rfc3339_and_time_left() -> None:
    from tradewire.stage import parse_rfc3339

    d = parse_rfc3339("2030-01-02T03:04:05.123456789Z")
    assert d is not None and d.tzinfo is not None and d.microsecond == 123456
    assert parse_rfc3339("2030-01-02T03:04:05+02:00").utcoffset().total_seconds() == 7200
    assert parse_rfc3339("yesterday") is None and parse_rfc3339(None) is None


@both_modes
def test_concurrency_is_bounded_per_registration(peer, run_worker, use_async) -> None:
    w = make_worker(peer)
    lock = threading.Lock()
    active = [0]
    peak = [0]
    release = threading.Event()

    def enter() -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])

    def leave() -> None:
        with lock:
            active[0] -= 1

    if use_async:
        @w.stage("risk", name="two", concurrency=2)
        async def two(call):
            enter()
            try:
                while not release.is_set():
                    await asyncio.sleep(0.005)
            finally:
                leave()
            return call.input
    else:
        @w.stage("risk", name="two", concurrency=2)
        def two(call):
            enter()
            try:
                release.wait(5)
            finally:
                leave()
            return call.input

    @w.stage("quant", name="one")  # concurrency not given: 1
    def one(call):
        enter()
        try:
            release.wait(5)
        finally:
            leave()
        return call.input

    run_worker(w, use_async)
    conn, (r2, r1) = registered(peer, 2)
    ids = [conn.call(r2["registration"], i) for i in range(5)] + [conn.call(r1["registration"], 10 + i)
                                                                   for i in range(3)]
    wait_until(lambda: active[0] == 3, timeout=5, what="two + one calls running")
    time.sleep(0.2)  # room for a bug to start more
    assert peak[0] == 3 and active[0] == 3
    release.set()
    results = [conn.wait_reply(i)["result"] for i in ids]
    assert results == [0, 1, 2, 3, 4, 10, 11, 12]
    assert peak[0] == 3


@both_modes
def test_handler_errors_become_error_replies(peer, run_worker, use_async, caplog) -> None:
    w = make_worker(peer)

    @w.stage("risk", name="flaky")
    def flaky(call):
        if call.input == "boom":
            raise ValueError("boom")
        if call.input == "set":
            return {1, 2}
        if call.input == "nan":
            return [math.nan]
        return {"ok": call.input}

    run_worker(w, use_async)
    conn, (reg,) = registered(peer)
    with caplog.at_level(logging.ERROR, logger="tradewire.stage"):
        boom = conn.wait_reply(conn.call(reg["registration"], "boom"))
        bad = conn.wait_reply(conn.call(reg["registration"], "set"))
        nan = conn.wait_reply(conn.call(reg["registration"], "nan"))
        ok = conn.wait_reply(conn.call(reg["registration"], "fine"))
    assert boom["error"] == {"code": -32000, "message": "ValueError: boom", "data": {"type": "handler_error"}}
    assert "result" not in boom
    assert bad["error"]["code"] == -32000 and bad["error"]["data"] == {"type": "handler_error"}
    assert bad["error"]["message"].startswith("TypeError: ") and "set" in bad["error"]["message"]
    assert nan["error"]["message"].startswith("ValueError: ")
    assert ok["result"] == {"ok": "fine"}  # the worker lives on
    failed = [r for r in caplog.records if r.name == "tradewire.stage" and r.levelno == logging.ERROR]
    assert any(r.exc_info and isinstance(r.exc_info[1], ValueError) and str(r.exc_info[1]) == "boom"
               for r in failed)
    assert any("not JSON" in r.getMessage() for r in failed)


def test_unknown_method_and_unknown_registration(peer, run_worker) -> None:
    w = make_worker(peer)
    w.stage("risk", name="r")(lambda call: call.output)
    run_worker(w)
    conn, (reg,) = registered(peer)
    e1 = conn.wait_reply(conn.call(reg["registration"], method="stage.explode"))
    e2 = conn.wait_reply(conn.call("r-999", {"signals": []}, []))
    assert e1["error"]["code"] == -32601 and e1["error"]["data"]["type"] == "method_not_found"
    assert e2["error"]["code"] == -32602 and e2["error"]["data"]["type"] == "invalid_params"
    assert "r-999" in e2["error"]["message"]
    conn.notify("something_new", {"x": 1})  # unknown notifications are ignored
    conn.cancel("c-never-sent")
    assert conn.wait_reply(conn.call(reg["registration"], None, [1]))["result"] == [1]


# ---------------------------------------------------------------------------
# cancellation


def test_cancel_reaches_a_sync_handler_and_no_reply_follows(peer, run_worker) -> None:
    w = make_worker(peer)
    started = threading.Event()
    saw: List[bool] = []
    ran: List[Any] = []

    @w.stage("risk", name="slow")
    def slow(call):
        ran.append(call.input)
        if call.input == "quick":
            return "quick"
        started.set()
        saw.append(call.cancelled.wait(5))
        return "too late"

    run_worker(w)
    conn, (reg,) = registered(peer)
    cid = conn.call(reg["registration"], "slow")
    assert started.wait(5)
    queued = conn.call(reg["registration"], "queued")  # waits for the single slot
    conn.cancel(queued)
    conn.cancel(cid)
    wait_until(lambda: saw, what="the handler to see the cancel")
    assert saw == [True]
    assert conn.wait_reply(conn.call(reg["registration"], "quick"))["result"] == "quick"
    time.sleep(0.1)
    assert not conn.has_reply(cid) and not conn.has_reply(queued)
    assert "queued" not in ran  # cancelled before it got a slot: never run


def test_cancel_reaches_async_and_executor_handlers(peer, run_worker) -> None:
    w = make_worker(peer)
    started = threading.Event()
    saw: List[Any] = []

    @w.stage("risk", name="coro")
    async def coro(call):
        if call.input == "quick":
            return "quick"
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            saw.append(("task cancelled", call.cancelled.is_set()))
            raise
        return "too late"

    blocking = threading.Event()

    @w.stage("quant", name="thread")
    def thread(call):
        blocking.set()
        saw.append(("event", call.cancelled.wait(5)))
        return "too late"

    run_worker(w, use_async=True)
    conn, (rc, rt) = registered(peer, 2)
    c1 = conn.call(rc["registration"], "slow")
    c2 = conn.call(rt["registration"], "slow")
    assert started.wait(5) and blocking.wait(5)
    conn.cancel(c1)
    conn.cancel(c2)
    wait_until(lambda: len(saw) == 2, what="both handlers to see the cancel")
    assert sorted(saw) == [("event", True), ("task cancelled", True)]
    assert conn.wait_reply(conn.call(rc["registration"], "quick"))["result"] == "quick"
    time.sleep(0.1)
    assert not conn.has_reply(c1) and not conn.has_reply(c2)


# ---------------------------------------------------------------------------
# requests from inside a call


@both_modes
def test_handler_uses_call_client_during_the_call(peer, run_worker, use_async) -> None:
    w = make_worker(peer)

    @w.stage("risk", name="sync-client")
    def sync_client(call):
        pong = call.client.ping()
        pub = call.client.publish("stage.note", {"iteration": call.iteration})
        return {"pong": pong, "seq": pub["seq"]}

    if use_async:
        @w.stage("quant", name="async-client")
        async def async_client(call):
            pong = await call.client.ping()
            status = await call.client.call("get_status")
            return {"pong": pong, "api_level": status["api_level"]}

    run_worker(w, use_async)
    conn, regs = registered(peer, 2 if use_async else 1)
    rep = conn.wait_reply(conn.call(regs[0]["registration"], {"signals": []}, [], iteration=3))
    assert rep["result"]["pong"] == {"pong": True} and isinstance(rep["result"]["seq"], int)
    assert ("publish", {"event_type": "stage.note", "data": {"iteration": 3}}) in conn.requests
    if use_async:
        rep2 = conn.wait_reply(conn.call(regs[1]["registration"], {}, [], stage="quant"))
        assert rep2["result"] == {"pong": {"pong": True}, "api_level": 2}


def test_call_client_errors_reach_the_handler(peer, run_worker) -> None:
    w = make_worker(peer)

    @w.stage("risk", name="r")
    def r(call):
        try:
            call.client.call("no_such_method")
        except tradewire.MethodNotFound as e:
            return {"caught": e.code}
        return {"caught": None}

    run_worker(w)
    conn, (reg,) = registered(peer)
    assert conn.wait_reply(conn.call(reg["registration"], {}, []))["result"] == {"caught": -32601}


# ---------------------------------------------------------------------------
# connection loss, shutdown, registration errors, stop


@both_modes
def test_reconnects_and_registers_again_after_a_drop(peer, run_worker, use_async) -> None:
    w = make_worker(peer)
    started = threading.Event()
    saw: List[bool] = []
    connects: List[Any] = []
    w.on_connect = connects.append

    @w.stage("risk", name="guard", durable=True)
    def guard(call):
        if call.input == "block":
            started.set()
            saw.append(call.cancelled.wait(5))
            return "from the old connection"
        return "new"

    run_worker(w, use_async)
    conn1, (r1,) = registered(peer)
    old = conn1.call(r1["registration"], "block")
    assert started.wait(5)
    conn1.drop()
    conn2, (r2,) = registered(peer)
    assert r2["registration"] != r1["registration"]
    assert conn2.registrations[0]["params"] == conn1.registrations[0]["params"] == {
        "stage": "risk", "name": "guard", "durable": True}
    wait_until(lambda: saw, what="the abandoned call to be cancelled")
    assert saw == [True]
    assert conn2.wait_reply(conn2.call(r2["registration"], "x"))["result"] == "new"
    time.sleep(0.1)
    assert not conn2.has_reply(old) and not conn1.has_reply(old)
    wait_until(lambda: len(connects) == 2, what="on_connect twice")
    assert [c[0]["registration"] for c in connects] == [r1["registration"], r2["registration"]]


def test_shutdown_notice_then_close_reconnects(peer, run_worker) -> None:
    w = make_worker(peer)
    w.stage("risk", name="r")(lambda call: "ok")
    run_worker(w)
    conn1, _ = registered(peer)
    conn1.notify("shutdown", {"reason": "test restart"})
    # still served while the daemon drains
    assert conn1.wait_reply(conn1.call("r-1", None, []))["result"] == "ok"
    conn1.drop()
    conn2, (r2,) = registered(peer)
    assert conn2.wait_reply(conn2.call(r2["registration"], None, []))["result"] == "ok"


def test_shutdown_notice_without_close_gives_up_after_the_grace(peer, run_worker) -> None:
    w = make_worker(peer, shutdown_grace=0.2)
    w.stage("risk", name="r")(lambda call: "ok")
    run_worker(w)
    conn1, _ = registered(peer)
    conn1.notify("shutdown", {"reason": "stuck"})
    conn1.wait_closed(timeout=3)
    conn2, _ = registered(peer)
    assert conn2.registrations[0]["params"] == {"stage": "risk", "name": "r"}


def test_waits_for_a_daemon_that_is_not_there_yet(tmp_path) -> None:
    path = str(tmp_path / "later.sock")
    w = StageWorker(path, reconnect_delay=0.02, max_reconnect_delay=0.05)
    w.stage("risk", name="r")(lambda call: "ok")
    runner = Runner(w).start()
    try:
        time.sleep(0.2)
        with StagePeer(path) as peer:
            conn, (reg,) = registered(peer)
            assert conn.wait_reply(conn.call(reg["registration"], None, []))["result"] == "ok"
            runner.stop()
    finally:
        w.stop()
        runner.join()
    assert runner.error is None


@both_modes
@pytest.mark.parametrize(
    "error, cls",
    [
        ({"code": -32030, "message": "stage_conflict: strategy already has a replace group",
          "data": {"type": "stage_conflict"}}, RPCError),
        ({"code": -32602, "message": "Invalid params", "data": {"type": "invalid_params",
                                                                 "errors": [{"path": "/mode", "message": "x"}]}},
         InvalidParams),
    ],
    ids=["stage_conflict", "invalid_params"],
)
def test_refused_registration_is_raised_from_run(peer, run_worker, use_async, error, cls) -> None:
    peer.register_error = error
    w = make_worker(peer)
    w.stage("strategy", name="mine", mode="replace")(lambda call: [])
    runner = run_worker(w, use_async)
    err = runner.join(5)
    assert isinstance(err, cls) and err.code == error["code"]
    assert err.type == error["data"]["type"]
    time.sleep(0.1)
    assert peer.connection_count() == 1  # not retried


def test_transient_registration_error_is_retried(peer, run_worker) -> None:
    answers = [{"code": -32000, "message": "shutting down", "data": {"type": "shutting_down"}}]
    peer.register_error = lambda params: answers.pop() if answers else None
    w = make_worker(peer)
    w.stage("risk", name="r")(lambda call: "ok")
    run_worker(w)
    first = peer.accept()
    first.wait_closed()
    conn, (reg,) = registered(peer)
    assert conn.wait_reply(conn.call(reg["registration"], None, []))["result"] == "ok"


@both_modes
def test_stop_unregisters_finishes_in_flight_calls_and_returns(peer, run_worker, use_async) -> None:
    w = make_worker(peer, stop_grace=3.0)
    started = threading.Event()

    @w.stage("risk", name="nondurable")
    def nondurable(call):
        started.set()
        time.sleep(0.3)
        return "finished"

    @w.stage("execution", name="kept", durable=True)
    def kept(call):
        return []

    runner = run_worker(w, use_async)
    conn, (r1, r2) = registered(peer, 2)
    cid = conn.call(r1["registration"], "x")
    assert started.wait(5)
    t0 = time.monotonic()
    w.stop()
    assert runner.join(5) is None
    assert time.monotonic() - t0 < 2.5
    assert conn.wait_reply(cid, timeout=1)["result"] == "finished"
    conn.wait_closed()
    unregs = [p for m, p in conn.requests if m == "unregister_stage"]
    assert unregs == [{"registration": r1["registration"]}]  # the durable group is left in place
    assert not w.connected
    assert peer.connection_count() == 1


def test_stop_before_run_returns_at_once(peer) -> None:
    w = make_worker(peer)
    w.stage("risk", name="r")(lambda call: "ok")
    w.stop()
    t0 = time.monotonic()
    w.run()
    assert time.monotonic() - t0 < 1.0
    # and it can run again afterwards
    runner = Runner(w).start()
    registered(peer)
    runner.stop()
    assert runner.error is None


def test_untrusted_socket_is_not_retried(tmp_path, run_worker, monkeypatch) -> None:
    from tradewire import stage as stage_mod

    def refuse(sock, path, uid=None):
        raise tradewire.UntrustedPeer(path, 12345, None, None, "server runs as uid 12345")

    monkeypatch.setattr(stage_mod, "check_peer", refuse)
    with StagePeer(str(tmp_path / "p.sock")) as peer:
        w = make_worker(peer)
        w.stage("risk", name="r")(lambda call: "ok")
        err = run_worker(w).join(5)
        assert isinstance(err, tradewire.UntrustedPeer)
        conn = peer.accept()
        conn.wait_closed()
        assert conn.messages == []  # nothing was sent


# ---------------------------------------------------------------------------
# the contrib examples, offline


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"contrib_{name}", CONTRIB / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _md(symbol: str, closes: List[float]) -> dict:
    return {"symbol": symbol, "timeframe": "1Day", "bars": [
        {"timestamp": f"2025-01-{i + 1:02d}T00:00:00.000000Z" if i < 31 else f"2025-02-{i - 30:02d}T00:00:00.000000Z",
         "open": c, "high": c, "low": c, "close": c, "volume": 1} for i, c in enumerate(closes)]}


def test_ma_crossover_rule() -> None:
    ma = _load("ma_crossover_strategy")
    up = _md("UP", [100 + i for i in range(40)])
    down = _md("DN", [200 - i for i in range(40)])
    flat = _md("FL", [50.0] * 40)
    short = _md("SH", [1.0] * 10)
    cross = _md("CR", [100.0] * 39 + [130.0])  # fast jumps above slow on the last bar
    sigs = {s["symbol"]: s for s in ma.signals_for({"UP": up, "DN": down, "FL": flat, "SH": short, "CR": cross})}
    assert [sigs[k]["action"] for k in ("UP", "DN", "FL", "SH", "CR")] == ["BUY", "SELL", "HOLD", "HOLD", "BUY"]
    for s in sigs.values():
        assert s["strategy_name"] == "TrendFollowing" and s["reasoning"].startswith("ma-crossover:")
        assert 0.0 <= s["confidence"] <= 1.0
        assert {"id", "symbol", "action", "strategy_name", "confidence"} <= set(s)
    assert sigs["UP"]["price"] == 139 and sigs["SH"]["confidence"] == 0.0 and sigs["FL"]["confidence"] == 0.0
    assert "crossed up" in sigs["CR"]["reasoning"]
    only = {s["symbol"]: s["action"] for s in ma.signals_for({"UP": up, "CR": cross}, cross_only=True)}
    assert only == {"UP": "HOLD", "CR": "BUY"}


def test_max_exposure_rule() -> None:
    mx = _load("max_exposure_risk")
    account = {"cash": 50_000, "equity": 100_000, "positions": {"AAA": 50}}
    signals = [
        {"symbol": "AAA", "action": "BUY", "approved": True, "qty": 60, "price": 100.0},   # (50+60)*100 = 11%
        {"symbol": "BBB", "action": "BUY", "approved": True, "qty": 90, "price": 100.0},   # 9%: fine
        {"symbol": "CCC", "action": "SELL", "approved": True, "qty": 500, "price": 100.0},
        {"symbol": "DDD", "action": "BUY", "approved": False, "qty": 999, "price": 100.0,
         "rejection_reason": "built-in"},
        {"symbol": "EEE", "action": "HOLD", "approved": True, "price": 100.0},
    ]
    out = mx.tighten(signals, account, 0.10)
    assert out[0]["approved"] is False
    assert out[0]["rejection_reason"] == "exposure for AAA would exceed 10% of equity"
    assert out[1:] == signals[1:]
    assert signals[0]["approved"] is True  # the input was not modified
    assert mx.tighten(signals[:2], {"equity": 0}, 0.10)[1]["approved"] is False  # no equity: fail closed


def test_folder_provider_reads_the_sample_data(tmp_path) -> None:
    fd = _load("folder_data_provider")
    data = fd.load_market_data(str(CONTRIB / "sample-data"), ["ACME", "ZETA", "NOPE"])
    assert sorted(data) == ["ACME", "ZETA"]
    for sym, md in data.items():
        assert md["symbol"] == sym and md["timeframe"] == "1Day" and len(md["bars"]) == 60
        assert set(md["bars"][0]) == {"timestamp", "open", "high", "low", "close", "volume"}
    (tmp_path / "BAD.json").write_text('[{"close": 1}]')
    (tmp_path / "JUNK.json").write_text("not json")
    assert fd.load_market_data(str(tmp_path), ["BAD", "JUNK"]) == {}


def test_examples_serve_through_the_peer(peer, run_worker) -> None:
    ma = _load("ma_crossover_strategy")
    fd = _load("folder_data_provider")
    mx = _load("max_exposure_risk")
    opts = dict(reconnect_delay=0.02, stop_grace=0.5)
    run_worker(fd.make_worker(peer.socket_path, **opts))
    c_fd, (r_fd,) = registered(peer)
    run_worker(ma.make_worker(peer.socket_path, **opts))
    c_ma, (r_ma,) = registered(peer)
    run_worker(mx.make_worker(peer.socket_path, **opts))
    c_mx, (r_mx,) = registered(peer)
    assert [c.registrations[0]["params"] for c in (c_fd, c_ma, c_mx)] == [
        {"stage": "data", "name": "folder", "mode": "replace"},
        {"stage": "strategy", "name": "ma-crossover", "mode": "replace"},
        {"stage": "risk", "name": "max-exposure", "mode": "after"},
    ]
    data = c_fd.wait_reply(c_fd.call(r_fd["registration"], {"symbols": ["ACME", "MISSING"]}, stage="data",
                                     name="folder", mode="replace", omit_output=True))["result"]
    assert list(data) == ["ACME"] and data["ACME"]["bars"][-1]["close"] == 59.29
    sigs = c_ma.wait_reply(c_ma.call(r_ma["registration"], data, stage="strategy", name="ma-crossover",
                                     mode="replace", omit_output=True))["result"]
    assert [s["symbol"] for s in sigs] == ["ACME"] and "ma-crossover" in sigs[0]["reasoning"]
    buy = dict(sigs[0], action="BUY", approved=True, qty=1000)
    out = c_mx.wait_reply(c_mx.call(r_mx["registration"], {"signals": [buy]}, [buy],
                                    account={"cash": 1e5, "equity": 1e5, "positions": {}}))["result"]
    assert out[0]["approved"] is False and out[0]["rejection_reason"].startswith("exposure for ACME")
