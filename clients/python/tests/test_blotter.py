"""contrib/python/blotter.py against a live daemon."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys

from support import REPO_ROOT, client_env, wait_until
from tradewire import Client

BLOTTER = REPO_ROOT / "contrib" / "python" / "blotter.py"
COLUMNS = ["time", "iteration", "symbol", "side", "qty", "fill_price", "commission", "order_id", "strategy",
           "confidence", "status"]

SYNTHETIC = {
    "signal": {
        "symbol": "ZZTEST",
        "action": "BUY",
        "strategy_name": "TrendFollowing",
        "confidence": 0.75,
        "price": 12.5,
        "qty": 7,
        "approved": True,
    },
    "order_id": "synthetic-1",
    "executed": True,
    "execution_time": "2024-01-02T15:04:05.000Z",
    "error": None,
    "fill_price": 12.5,
    "quantity": 7,
    "side": "buy",
    "commission": 0.07,
}


def _rows(path: str):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _num(text: str):
    return None if text == "" else float(text)


def test_blotter_writes_one_row_per_execution_result(daemon_factory, tmp_path) -> None:
    d = daemon_factory.start()
    out = str(tmp_path / "blotter.csv")
    p = subprocess.Popen(
        [sys.executable, str(BLOTTER), "--socket", d.socket_path, "--csv", out, "--since", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=client_env(),
    )
    try:
        with Client(d.socket_path) as c:
            res = c.run_pipeline(["AAPL", "MSFT", "GOOGL", "NVDA", "TSLA"])
            pub = c.publish("executed_ready", [SYNTHETIC], {"source": "pytest"})
            assert pub["seq"] > 0
            expected = len(res["execution_results"]) + 1
            rows = wait_until(lambda: len(_rows(out)) >= expected and _rows(out), timeout=20,
                              what=f"{expected} blotter rows")
            assert len(rows) == expected
            with open(out, newline="") as f:
                assert next(csv.reader(f)) == COLUMNS

            for row, x in zip(rows, res["execution_results"]):
                sig = x["signal"]
                assert row["iteration"] == str(res["iteration"])
                assert row["symbol"] == sig["symbol"]
                assert row["side"] == x["side"]
                assert _num(row["qty"]) == x["quantity"]
                assert _num(row["fill_price"]) == x["fill_price"]
                assert _num(row["commission"]) == x["commission"]
                assert row["order_id"] == (x["order_id"] or "")
                assert row["strategy"] == sig["strategy_name"]
                assert _num(row["confidence"]) == sig["confidence"]
                assert row["status"] == ("filled" if x["executed"] else "failed" if x["error"] else "simulated")

            syn = rows[-1]
            assert syn["symbol"] == "ZZTEST" and syn["side"] == "buy" and syn["qty"] == "7"
            assert _num(syn["fill_price"]) == 12.5 and _num(syn["commission"]) == 0.07
            assert syn["order_id"] == "synthetic-1" and syn["status"] == "filled"
            assert syn["strategy"] == "TrendFollowing" and _num(syn["confidence"]) == 0.75
            assert syn["time"].startswith("2024-01-02T15:04:05")  # the daemon may re-encode the fraction
            # the row's iteration is the event's metadata.iteration; at api_level 2 a client's
            # executed_ready starts no iteration, so the daemon stamps none (an empty cell)
            ev = c.get_event_history(event_type="executed_ready")["events"][-1]
            assert ev["seq"] == pub["seq"]
            stamped = ev["metadata"].get("iteration")
            assert syn["iteration"] == ("" if stamped is None else str(stamped))
            if "iteration" in pub:
                assert syn["iteration"] == str(pub["iteration"])
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            _out, err = p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            _out, err = p.communicate()
    assert p.returncode == 0, err
    assert "stopped after" in err
