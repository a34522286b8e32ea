#!/usr/bin/env python3
"""Trade blotter: an example remote handler for the tradewire daemon.

Subscribes to ``approved_ready`` and ``executed_ready`` and appends one CSV
row per ExecutionResult to a trade blotter:

    time,iteration,symbol,side,qty,fill_price,commission,order_id,strategy,confidence,status

``status`` is ``filled`` (executed), ``failed`` (not executed, with an
error) or ``simulated`` (not executed and no error: the would-be fills of a
dry run).  The approved signals of each iteration are remembered so a result
whose signal lacks the strategy or confidence still gets them.

It runs on :func:`tradewire.run_handler`, so it survives daemon restarts:
it reconnects with backoff and resumes from the last event it handled.

    python3 contrib/python/blotter.py --csv blotter.csv

Stop it with Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import signal
import sys
import threading
from collections import OrderedDict
from typing import Any, Dict, List, Optional

try:
    import tradewire
except ImportError:  # run from a checkout without `pip install clients/python`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
    import tradewire

COLUMNS = [
    "time",
    "iteration",
    "symbol",
    "side",
    "qty",
    "fill_price",
    "commission",
    "order_id",
    "strategy",
    "confidence",
    "status",
]
PATTERNS = ["approved_ready", "executed_ready"]

log = logging.getLogger("blotter")


def _cell(v: Any) -> Any:
    return "" if v is None else v


class Blotter:
    """Turns pipeline events into CSV rows appended to ``path``."""

    #: how many iterations of approved signals to remember
    KEEP_ITERATIONS = 256

    def __init__(self, path: str) -> None:
        self.path = path
        self.approved: "OrderedDict[Any, Dict[str, Dict[str, Any]]]" = OrderedDict()
        self.rows_written = 0

    def handle(self, event: "tradewire.Event") -> None:
        if event.event_type == "approved_ready":
            signals = event.data if isinstance(event.data, list) else []
            self.approved[event.iteration] = {
                s.get("symbol"): s for s in signals if isinstance(s, dict) and s.get("symbol")
            }
            while len(self.approved) > self.KEEP_ITERATIONS:
                self.approved.popitem(last=False)
            log.info("iteration %s: %d signal(s) approved", event.iteration, len(signals))
        elif event.event_type == "executed_ready":
            results = event.data if isinstance(event.data, list) else []
            rows = [self.row(event, r) for r in results if isinstance(r, dict)]
            self.append(rows)
            self.approved.pop(event.iteration, None)
            log.info("iteration %s: %d execution result(s) written to %s", event.iteration, len(rows), self.path)

    def row(self, event: "tradewire.Event", result: Dict[str, Any]) -> Dict[str, Any]:
        sig = result.get("signal") if isinstance(result.get("signal"), dict) else {}
        symbol = sig.get("symbol")
        approved = self.approved.get(event.iteration, {}).get(symbol, {})
        side = result.get("side")
        if side is None and isinstance(sig.get("action"), str):
            side = sig["action"].lower()
        qty = result.get("quantity")
        if qty is None:
            qty = sig.get("qty", approved.get("qty"))
        if result.get("executed"):
            status = "filled"
        elif result.get("error"):
            status = "failed"
        else:
            status = "simulated"
        return {
            "time": result.get("execution_time") or event.timestamp,
            "iteration": _cell(event.iteration),
            "symbol": _cell(symbol),
            "side": _cell(side),
            "qty": _cell(qty),
            "fill_price": _cell(result.get("fill_price")),
            "commission": _cell(result.get("commission")),
            "order_id": _cell(result.get("order_id")),
            "strategy": _cell(sig.get("strategy_name") or approved.get("strategy_name")),
            "confidence": _cell(sig.get("confidence", approved.get("confidence"))),
            "status": status,
        }

    def append(self, rows: List[Dict[str, Any]]) -> None:
        if not rows:
            return
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
            if new:
                w.writeheader()
            w.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        self.rows_written += len(rows)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Keep a CSV trade blotter of the tradewire daemon's executions.")
    ap.add_argument("--csv", default="blotter.csv", metavar="FILE", help="CSV file to append to (default blotter.csv)")
    ap.add_argument("--socket", metavar="PATH", help="daemon socket (default: the usual tradewire rules)")
    ap.add_argument("--since", type=int, metavar="SEQ",
                    help="also replay events after SEQ still in the daemon's history (0: all it holds)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log each iteration")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    blotter = Blotter(args.csv)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"blotter: writing {args.csv}; watching {', '.join(PATTERNS)}", file=sys.stderr, flush=True)
    tradewire.run_handler(
        PATTERNS,
        blotter.handle,
        socket_path=args.socket,
        since_seq=args.since,
        stop_event=stop,
        on_gap=lambda n: log.warning("events %s..%s are gone from history; the blotter may miss trades",
                                     n.first_seq, n.last_seq),
    )
    print(f"blotter: stopped after {blotter.rows_written} row(s)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
