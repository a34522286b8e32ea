"""Remote stages against the real daemon (docs/PROTOCOL.md section 9, api_level 2).

Each test starts its own daemon (``--seed 42``, so every test starts from a
fresh book) and stops every worker process it started.  The
scenario that needs an approved trade: ``GOOGL`` with strategy
``TrendFollowing`` gives an approved BUY under seed 42; each test checks that
first, without any worker, so a changed simulation fails loudly rather than
silently proving nothing.  Runs are dry runs: nothing changes the book.
"""
from __future__ import annotations

import importlib.util
import queue
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Dict, List, Optional

import pytest

from support import REPO_ROOT, Daemon, client_env, wait_until
from tradewire import Client, StageWorker

CONTRIB = REPO_ROOT / "contrib" / "python"
SAMPLE = CONTRIB / "sample-data"
SYMBOL = "GOOGL"
STRATEGY = "TrendFollowing"


# ---------------------------------------------------------------------------
# helpers


def start_daemon(daemon_factory) -> Daemon:
    """A fresh daemon (nothing of a previous one carries over)."""
    return daemon_factory.start()


class Proc:
    """A worker process; its output lines are collected (and shown when a test fails)."""

    def __init__(self, argv: List[str]) -> None:
        self.argv = argv
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.output: List[str] = []
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=client_env(), cwd=str(REPO_ROOT))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_line(self, prefix: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.argv[:3]} printed no {prefix!r} line; output: {''.join(self.output)}")
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    raise AssertionError(f"{self.argv[:3]} exited {self.proc.returncode}: {''.join(self.output)}")
                continue
            if line.startswith(prefix):
                return line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def procs():
    started: List[Proc] = []

    def start(*argv: str) -> Proc:
        p = Proc(list(argv))
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def example(procs, script: str, socket_path: str, *args: str) -> Proc:
    return procs(sys.executable, str(CONTRIB / script), "--socket", socket_path, *args)


class ThreadWorker:
    """An in-process StageWorker run in a thread; stop() joins it."""

    def __init__(self, worker: StageWorker) -> None:
        self.worker = worker
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as e:  # noqa: BLE001
            self.error = e

    def stop(self) -> None:
        self.worker.stop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the stage worker did not stop"


def group(client: Client, stage: str, name: str) -> Optional[Dict[str, Any]]:
    for g in client.get_status().get("stages", {}).get(stage, []):
        if g.get("name") == name:
            return g
    return None


def wait_group(client: Client, stage: str, name: str, members: int = 1, proc: Optional[Proc] = None) -> Dict[str, Any]:
    def ready() -> Any:
        if proc is not None and proc.proc.poll() is not None:
            raise AssertionError(f"worker exited {proc.proc.returncode}: {''.join(proc.output)}")
        g = group(client, stage, name)
        return g if g is not None and g.get("members", 0) >= members else None
    return wait_until(ready, timeout=20, interval=0.05, what=f"{stage}/{name} with {members} member(s)")


def run(client: Client, **kw: Any) -> Dict[str, Any]:
    kw.setdefault("dry_run", True)
    return client.run_pipeline(**kw)


def trades(signals: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [s for s in signals if s.get("action") != "HOLD"]


def outcomes(result: Dict[str, Any]) -> List[tuple]:
    return [(h["stage"], h["name"], h["mode"], h["outcome"]) for h in result["handlers"]]


def approved_buy(client: Client) -> Dict[str, Any]:
    """The scenario's approved BUY without any group (precondition of several tests)."""
    base = run(client, symbols=[SYMBOL], strategy=STRATEGY)
    assert base["handlers"] == []
    buys = [s for s in base["approved_signals"] if s["symbol"] == SYMBOL and s["action"] == "BUY"]
    assert buys, f"seed 42 / {STRATEGY} / {SYMBOL} no longer gives an approved BUY: {base['rejected_signals']}"
    return buys[0]


def observe_risk(client: Client, socket_path: str) -> tuple:
    """``(the approved BUY, the account)`` as a risk group sees them (a group that changes nothing)."""
    seen: List[Any] = []
    w = StageWorker(socket_path)

    @w.stage("risk", name="observer")
    def observer(call):
        seen.append(call)
        return call.output

    tw = ThreadWorker(w)
    try:
        wait_group(client, "risk", "observer")
        run(client, symbols=[SYMBOL], strategy=STRATEGY)
    finally:
        tw.stop()
    wait_until(lambda: group(client, "risk", "observer") is None, what="the observer group to go")
    assert seen, "the observer group was not called"
    call = seen[-1]
    buys = [s for s in call.output if s["symbol"] == SYMBOL and s["action"] == "BUY" and s["approved"]]
    assert buys, call.output
    return buys[0], call.account


def load_contrib(name: str):
    spec = importlib.util.spec_from_file_location(f"contrib_{name}", CONTRIB / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------
# tests


def test_risk_after_group_that_rejects_everything(daemon_factory) -> None:
    d = start_daemon(daemon_factory)
    with Client(d.socket_path, timeout=60) as c:
        approved_buy(c)
        calls: List[Any] = []
        w = StageWorker(d.socket_path)

        @w.stage("risk", name="veto-all", timeout_ms=5000)
        def veto_all(call):
            calls.append(call)
            return [dict(s, approved=False, rejection_reason="pytest veto") if s.get("approved") else s
                    for s in call.output]

        tw = ThreadWorker(w)
        try:
            g = wait_group(c, "risk", "veto-all")
            assert g["mode"] == "after" and g["on_failure"] == "fail_closed"
            r = run(c, symbols=[SYMBOL], strategy=STRATEGY)
        finally:
            tw.stop()
        assert tw.error is None
        assert trades(r["approved_signals"]) == []
        rejected = {s["symbol"]: s for s in r["rejected_signals"]}
        assert rejected[SYMBOL]["action"] == "BUY" and rejected[SYMBOL]["rejection_reason"] == "pytest veto"
        assert r["execution_results"] == []
        assert outcomes(r) == [("risk", "veto-all", "after", "ok")]
        call = calls[-1]
        assert call.stage == "risk" and call.mode == "after" and call.dry_run is True
        assert call.iteration_id == r["iteration_id"] and call.id.startswith("c-")
        assert [s["symbol"] for s in call.input["signals"]] == [SYMBOL]
        assert {"cash", "equity", "positions", "risk_budget"} <= set(call.account)
        # the worker stopped: its (non-durable) group went with it
        wait_until(lambda: group(c, "risk", "veto-all") is None, what="the group to go")
        assert trades(run(c, symbols=[SYMBOL], strategy=STRATEGY)["approved_signals"])


def test_ma_crossover_example_replaces_the_strategy(daemon_factory, procs) -> None:
    d = start_daemon(daemon_factory)
    ma = load_contrib("ma_crossover_strategy")
    with Client(d.socket_path, timeout=60) as c:
        p = example(procs, "ma_crossover_strategy.py", d.socket_path)
        g = wait_group(c, "strategy", "ma-crossover", proc=p)
        assert g["mode"] == "replace"
        r = run(c, symbols=["AAPL", "MSFT", "GOOGL"], include_market_data=True)
        assert [s["symbol"] for s in r["signals"]] == ["AAPL", "GOOGL", "MSFT"]
        for s in r["signals"]:
            assert "ma-crossover" in s["reasoning"] and s["strategy_name"] == "TrendFollowing"
        expected = {s["symbol"]: s["action"] for s in ma.signals_for(r["market_data"])}
        assert {s["symbol"]: s["action"] for s in r["signals"]} == expected
        assert ("strategy", "ma-crossover", "replace", "ok") in outcomes(r)
        assert not [e for e in r["errors"] if e["stage"] == "strategy"]


def test_folder_data_provider_supplies_the_market_data(daemon_factory, procs) -> None:
    d = start_daemon(daemon_factory)
    fd = load_contrib("folder_data_provider")
    fixture = fd.load_market_data(str(SAMPLE), ["ACME", "ZETA"])
    with Client(d.socket_path, timeout=60) as c:
        p = example(procs, "folder_data_provider.py", d.socket_path, "--dir", str(SAMPLE))
        wait_group(c, "data", "folder", proc=p)
        r = run(c, symbols=["ACME", "ZETA"])
        for sym in ("ACME", "ZETA"):
            md = r["market_data"][sym]
            assert md["last_close"] == fixture[sym]["bars"][-1]["close"]
            assert md["bars"] == 60
        assert ("data", "folder", "replace", "ok") in outcomes(r)
        # a symbol without a file is left out and reported
        r2 = run(c, symbols=["ACME", "NOPE"])
        assert list(r2["market_data"]) == ["ACME"]
        assert any(e["stage"] == "data" and e.get("symbol") == "NOPE" for e in r2["errors"])


def test_max_exposure_example_rejects_an_oversize_buy(daemon_factory, procs) -> None:
    d = start_daemon(daemon_factory)
    mx = load_contrib("max_exposure_risk")
    with Client(d.socket_path, timeout=60) as c:
        approved_buy(c)
        buy, account = observe_risk(c, d.socket_path)
        equity = account["equity"]
        held = account["positions"].get(SYMBOL, 0) if isinstance(account["positions"], dict) else 0
        value = (held + buy["qty"]) * buy["price"]
        # the default 10 % when the built-in sizing goes past it, else half of what it sized
        pct = mx.DEFAULT_MAX_PCT if value > mx.DEFAULT_MAX_PCT * equity else round(value / equity / 2, 6)
        p = example(procs, "max_exposure_risk.py", d.socket_path, "--max-pct", str(pct))
        wait_group(c, "risk", "max-exposure", proc=p)
        r = run(c, symbols=[SYMBOL], strategy=STRATEGY)
        rejected = {s["symbol"]: s for s in r["rejected_signals"]}
        assert rejected[SYMBOL]["rejection_reason"] == f"exposure for {SYMBOL} would exceed {mx.pct_text(pct)} of equity"
        assert trades(r["approved_signals"]) == []
        assert outcomes(r) == [("risk", "max-exposure", "after", "ok")]
        assert not [e for e in r["errors"] if e["stage"] == "risk"]  # a valid tightening, nothing ignored

        # a generous limit leaves the BUY approved
        p.stop()
        wait_until(lambda: group(c, "risk", "max-exposure") is None, what="the group to go")
        p2 = example(procs, "max_exposure_risk.py", d.socket_path, "--max-pct", "0.99")
        wait_group(c, "risk", "max-exposure", proc=p2)
        r2 = run(c, symbols=[SYMBOL], strategy=STRATEGY)
        assert [s["symbol"] for s in trades(r2["approved_signals"])] == [SYMBOL]


def test_c_risk_check_example_rejects_and_clips(daemon_factory, procs) -> None:
    """contrib/c/risk_check (built by the C client's make) against the real daemon."""
    binary = REPO_ROOT / "contrib" / "c" / "risk_check"
    if not binary.exists():
        subprocess.run(["make", "-s", "-C", str(REPO_ROOT / "contrib" / "c"), "risk_check"], check=True)
    d = start_daemon(daemon_factory)
    with Client(d.socket_path, timeout=60) as c:
        buy = approved_buy(c)
        assert buy["qty"] > 10
        p = procs(str(binary), "--socket", d.socket_path, "--max-qty", "10")
        wait_group(c, "risk", "c-risk-check", proc=p)
        r = run(c, symbols=[SYMBOL], strategy=STRATEGY)
        rejected = {s["symbol"]: s for s in r["rejected_signals"]}
        assert rejected[SYMBOL]["rejection_reason"] == f"qty {buy['qty']} exceeds the C risk check's limit 10"
        assert outcomes(r) == [("risk", "c-risk-check", "after", "ok")]
        p.stop()
        wait_until(lambda: group(c, "risk", "c-risk-check") is None, what="the group to go")

        p2 = procs(str(binary), "--socket", d.socket_path, "--max-qty", "10", "--clip")
        wait_group(c, "risk", "c-risk-check", proc=p2)
        r2 = run(c, symbols=[SYMBOL], strategy=STRATEGY)
        clipped = [s for s in trades(r2["approved_signals"]) if s["symbol"] == SYMBOL]
        assert len(clipped) == 1 and clipped[0]["qty"] == 10
        assert clipped[0]["risk_amount"] < buy["risk_amount"]
        assert not [e for e in r2["errors"] if e["stage"] == "risk"]  # a valid tightening


KILLED_WORKER = textwrap.dedent(
    """
    import sys, time, tradewire
    w = tradewire.StageWorker(sys.argv[1])

    @w.stage("risk", name="sleepy-guard", durable=True, timeout_ms=60000)
    def guard(call):
        print("CALL", call.id, flush=True)
        time.sleep(120)
        return call.output

    w.run()
    """
)


def test_killed_worker_durable_risk_group_fails_closed(daemon_factory, procs) -> None:
    d = start_daemon(daemon_factory)
    with Client(d.socket_path, timeout=60) as c:
        approved_buy(c)
        p = procs(sys.executable, "-c", KILLED_WORKER, d.socket_path)
        g = wait_group(c, "risk", "sleepy-guard", proc=p)
        assert g["durable"] is True and g["on_failure"] == "fail_closed"

        result: Dict[str, Any] = {}

        def pipeline() -> None:
            with Client(d.socket_path, timeout=120) as c2:
                try:
                    result["r"] = run(c2, symbols=[SYMBOL], strategy=STRATEGY)
                except BaseException as e:  # noqa: BLE001
                    result["error"] = e

        t = threading.Thread(target=pipeline, daemon=True)
        t.start()
        p.wait_line("CALL")
        p.proc.kill()
        p.proc.wait(10)
        t.join(90)
        assert not t.is_alive(), "run_pipeline did not finish after the worker died"
        assert "error" not in result, result.get("error")
        r = result["r"]
        rejected = {s["symbol"]: s for s in r["rejected_signals"]}
        assert rejected[SYMBOL]["rejection_reason"].startswith("risk handler sleepy-guard failed")
        assert trades(r["approved_signals"]) == []
        assert outcomes(r) == [("risk", "sleepy-guard", "after", "disconnected")]

        # durable: the group outlives its last member, and its calls fail closed (no_member)
        g = group(c, "risk", "sleepy-guard")
        assert g is not None and g["members"] == 0
        r2 = run(c, symbols=[SYMBOL], strategy=STRATEGY)
        rejected2 = {s["symbol"]: s for s in r2["rejected_signals"]}
        assert rejected2[SYMBOL]["rejection_reason"].startswith("risk handler sleepy-guard failed")
        assert outcomes(r2) == [("risk", "sleepy-guard", "after", "no_member")]

        # until the group is removed
        assert c.call("unregister_stage", {"stage": "risk", "name": "sleepy-guard"}) == {"removed": 1}
        r3 = run(c, symbols=[SYMBOL], strategy=STRATEGY)
        assert [s["symbol"] for s in trades(r3["approved_signals"])] == [SYMBOL]
        assert r3["handlers"] == []
