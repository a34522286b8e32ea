#!/usr/bin/env python3
"""Max-exposure risk check: an example remote stage for tradewire.

Registers as a ``risk`` stage in mode ``after``, group name ``max-exposure``:
the daemon sends it every signal after its built-in risk agent decided, plus
the account (``cash``, ``equity``, ``positions: {SYMBOL: qty}``), and uses the
list it returns.

For each *approved BUY*, the position it would leave is
``(existing qty + signal qty) x price``.  When that exceeds ``--max-pct``
(default 0.10) of the account's equity, the signal is rejected:
``approved: false``, ``rejection_reason: "exposure for SYM would exceed 10% of
equity"``.  Every other signal (SELL, HOLD, already rejected, within the
limit) is returned unchanged.  It only tightens, as a risk group must.

* A signal without ``qty`` counts as 0 shares on top of the position.
* A signal without ``price`` cannot be judged and is left as it is (warning).
* Equity missing or not positive: every approved BUY is rejected.

The group is ``fail_closed`` (the risk default): if this worker fails or
times out, the daemon rejects the iteration's non-HOLD signals.  With
``--durable`` that also holds while no worker is connected.

    python3 contrib/python/max_exposure_risk.py --socket PATH [--max-pct 0.10]

Stop it with Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from typing import Any, Dict, List, Optional

try:
    import tradewire
except ImportError:  # run from a checkout without `pip install clients/python`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
    import tradewire

GROUP = "max-exposure"
DEFAULT_MAX_PCT = 0.10

log = logging.getLogger("max-exposure")


def _num(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        return None
    return float(v)


def position_qty(account: Any, symbol: str) -> float:
    """Shares held in ``symbol``: ``account.positions`` is ``{SYMBOL: qty}`` (a
    get_portfolio-style list of ``{"symbol", "qty"}`` is accepted too)."""
    positions = account.get("positions") if isinstance(account, dict) else None
    if isinstance(positions, dict):
        return _num(positions.get(symbol)) or 0.0
    if isinstance(positions, list):
        for p in positions:
            if isinstance(p, dict) and p.get("symbol") == symbol:
                return _num(p.get("qty")) or 0.0
    return 0.0


def pct_text(max_pct: float) -> str:
    return f"{max_pct * 100:g}%"


def tighten(signals: Any, account: Any, max_pct: float = DEFAULT_MAX_PCT) -> List[Dict[str, Any]]:
    """The risk group's result: ``signals`` with the oversize approved BUYs rejected."""
    if not isinstance(signals, list):
        return []
    equity = _num(account.get("equity")) if isinstance(account, dict) else None
    out: List[Dict[str, Any]] = []
    for s in signals:
        if not (isinstance(s, dict) and s.get("approved") is True and s.get("action") == "BUY"):
            out.append(s)
            continue
        symbol = str(s.get("symbol"))
        price = _num(s.get("price"))
        if price is None:
            log.warning("%s: approved BUY without a price; left as it is", symbol)
            out.append(s)
            continue
        qty = _num(s.get("qty")) or 0.0
        value = (position_qty(account, symbol) + qty) * price
        if equity is None or equity <= 0 or value > max_pct * equity:
            reason = f"exposure for {symbol} would exceed {pct_text(max_pct)} of equity"
            log.info("%s: rejected (%.2f of equity %s)", symbol, value, equity)
            s = dict(s, approved=False, rejection_reason=reason)
        out.append(s)
    return out


def make_worker(
    socket_path: Optional[str] = None,
    *,
    max_pct: float = DEFAULT_MAX_PCT,
    durable: Optional[bool] = None,
    timeout_ms: Optional[int] = None,
    **worker_options: Any,
) -> "tradewire.StageWorker":
    if not 0 < max_pct:
        raise ValueError("--max-pct must be positive")
    worker = tradewire.StageWorker(socket_path, **worker_options)

    @worker.stage("risk", name=GROUP, mode="after", timeout_ms=timeout_ms, durable=durable)
    def max_exposure(call: "tradewire.StageCall") -> List[Dict[str, Any]]:
        signals = call.output if isinstance(call.output, list) else (call.input or {}).get("signals", [])
        return tighten(signals, call.account, max_pct)

    return worker


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--socket", metavar="PATH", help="the daemon's socket (default: the usual rules)")
    ap.add_argument("--max-pct", type=float, default=DEFAULT_MAX_PCT,
                    help="largest position value as a fraction of equity (default %(default)s)")
    ap.add_argument("--durable", action="store_true",
                    help="keep the group (failing closed) while no worker is connected")
    ap.add_argument("--timeout-ms", type=int, help="per-call deadline (default: the daemon's, 5000)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log each rejection")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        worker = make_worker(args.socket, max_pct=args.max_pct, durable=True if args.durable else None,
                             timeout_ms=args.timeout_ms)
    except ValueError as e:
        ap.error(str(e))
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    try:
        worker.run()
    except (tradewire.RPCError, tradewire.UntrustedSocket) as e:
        print(f"max_exposure_risk: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
