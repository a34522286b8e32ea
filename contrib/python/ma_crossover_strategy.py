#!/usr/bin/env python3
"""Moving-average crossover strategy: an example remote stage for tradewire.

Registers as the ``strategy`` stage in mode ``replace``, group name
``ma-crossover``: the daemon sends it each iteration's market data
(``{SYMBOL: MarketData}``) and uses the signals it returns instead of the
built-in strategy agent's.  One TradingSignal per symbol:

* ``fast``/``slow`` are simple moving averages of the closes over the last
  ``--fast`` (10) and ``--slow`` (30) bars; ``spread = (fast - slow) / slow``.
* Default rule (trend): BUY while fast > slow, SELL while fast < slow, HOLD
  when they are equal.  With ``--cross-only``: BUY only when fast crossed above
  slow on the last bar (it was <= on the bar before), SELL only when it crossed
  below, HOLD otherwise.
* A symbol with fewer than ``slow + 1`` bars gets HOLD with confidence 0.
* ``confidence = min(1, |spread| / --full-spread)`` (default 0.05: a 5 %
  spread is full confidence).
* ``strategy_name`` is ``TrendFollowing`` (the built-in name that stands for
  the original MovingAverageCrossover; only the ten built-in names are
  meaningful to the daemon), ``reasoning`` starts with ``ma-crossover:``,
  ``price`` is the last close; stop loss and take profit are left to the
  daemon's built-in formulas.

    python3 contrib/python/ma_crossover_strategy.py --socket PATH [--fast 10 --slow 30]

Stop it with Ctrl-C or SIGTERM.  It reconnects by itself when the daemon
restarts.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence

try:
    import tradewire
except ImportError:  # run from a checkout without `pip install clients/python`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
    import tradewire

GROUP = "ma-crossover"
STRATEGY_NAME = "TrendFollowing"
DEFAULT_FAST = 10
DEFAULT_SLOW = 30
DEFAULT_FULL_SPREAD = 0.05

log = logging.getLogger("ma-crossover")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def closes_of(md: Any) -> List[float]:
    """The closes of a MarketData object, oldest first (bars sorted by timestamp when all have one)."""
    bars = md.get("bars") if isinstance(md, dict) else None
    if not isinstance(bars, list):
        return []
    bars = [b for b in bars if isinstance(b, dict) and isinstance(b.get("close"), (int, float))]
    if bars and all(isinstance(b.get("timestamp"), str) for b in bars):
        bars = sorted(bars, key=lambda b: b["timestamp"])
    return [float(b["close"]) for b in bars if math.isfinite(float(b["close"]))]


def sma(values: Sequence[float], n: int, end: Optional[int] = None) -> float:
    """Mean of the ``n`` values ending before index ``end`` (default: the last ``n``)."""
    end = len(values) if end is None else end
    window = values[end - n:end]
    return sum(window) / n


def evaluate(
    symbol: str,
    md: Any,
    *,
    fast: int = DEFAULT_FAST,
    slow: int = DEFAULT_SLOW,
    full_spread: float = DEFAULT_FULL_SPREAD,
    cross_only: bool = False,
    strategy_name: str = STRATEGY_NAME,
) -> Dict[str, Any]:
    """One TradingSignal for ``symbol`` (see the module docstring for the rule)."""
    closes = closes_of(md)
    signal_: Dict[str, Any] = {
        "id": f"{GROUP}-{uuid.uuid4().hex[:12]}-{symbol}",
        "symbol": symbol,
        "strategy_name": strategy_name,
        "timestamp": _now(),
        "approved": False,
        "rejection_reason": None,
    }
    if closes:
        signal_["price"] = closes[-1]
    if len(closes) < slow + 1:
        signal_.update(action="HOLD", confidence=0.0,
                       reasoning=f"{GROUP}: not enough bars ({len(closes)}, need {slow + 1})")
        return signal_
    f_now, s_now = sma(closes, fast), sma(closes, slow)
    f_prev, s_prev = sma(closes, fast, len(closes) - 1), sma(closes, slow, len(closes) - 1)
    spread = (f_now - s_now) / s_now if s_now else 0.0
    crossed_up = f_prev <= s_prev and f_now > s_now
    crossed_down = f_prev >= s_prev and f_now < s_now
    if cross_only:
        action = "BUY" if crossed_up else "SELL" if crossed_down else "HOLD"
    else:
        action = "BUY" if f_now > s_now else "SELL" if f_now < s_now else "HOLD"
    confidence = min(1.0, max(0.0, abs(spread) / full_spread)) if full_spread > 0 else 1.0
    rel = ">" if f_now > s_now else "<" if f_now < s_now else "="
    note = "; crossed up on the last bar" if crossed_up else "; crossed down on the last bar" if crossed_down else ""
    signal_.update(
        action=action,
        confidence=round(confidence, 6),
        reasoning=f"{GROUP}: SMA{fast} {f_now:.4f} {rel} SMA{slow} {s_now:.4f} (spread {spread:+.2%}){note}",
    )
    return signal_


def signals_for(market_data: Any, **options: Any) -> List[Dict[str, Any]]:
    """The stage's result for ``{SYMBOL: MarketData}``: one signal per symbol, by symbol."""
    if not isinstance(market_data, dict):
        return []
    return [evaluate(sym, market_data[sym], **options) for sym in sorted(market_data)]


def make_worker(
    socket_path: Optional[str] = None,
    *,
    fast: int = DEFAULT_FAST,
    slow: int = DEFAULT_SLOW,
    full_spread: float = DEFAULT_FULL_SPREAD,
    cross_only: bool = False,
    strategy_name: str = STRATEGY_NAME,
    timeout_ms: Optional[int] = None,
    on_failure: Optional[str] = None,
    **worker_options: Any,
) -> "tradewire.StageWorker":
    if not 1 <= fast < slow:
        raise ValueError("need 1 <= fast < slow")
    worker = tradewire.StageWorker(socket_path, **worker_options)

    @worker.stage("strategy", name=GROUP, mode="replace", timeout_ms=timeout_ms, on_failure=on_failure)
    def strategy(call: "tradewire.StageCall") -> List[Dict[str, Any]]:
        signals = signals_for(call.input, fast=fast, slow=slow, full_spread=full_spread,
                              cross_only=cross_only, strategy_name=strategy_name)
        log.info("iteration %s: %s", call.iteration,
                 ", ".join(f"{s['symbol']} {s['action']} {s['confidence']:.2f}" for s in signals) or "no data")
        return signals

    return worker


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--socket", metavar="PATH", help="the daemon's socket (default: the usual rules)")
    ap.add_argument("--fast", type=int, default=DEFAULT_FAST, help="fast SMA length in bars (default %(default)s)")
    ap.add_argument("--slow", type=int, default=DEFAULT_SLOW, help="slow SMA length in bars (default %(default)s)")
    ap.add_argument("--full-spread", type=float, default=DEFAULT_FULL_SPREAD,
                    help="relative spread that gives confidence 1 (default %(default)s)")
    ap.add_argument("--cross-only", action="store_true",
                    help="BUY/SELL only on the bar where the averages cross; HOLD otherwise")
    ap.add_argument("--strategy-name", default=STRATEGY_NAME, help="strategy_name of the signals (default %(default)s)")
    ap.add_argument("--fallback", action="store_true",
                    help="register with on_failure=fallback: the built-in strategy runs when this one fails")
    ap.add_argument("--timeout-ms", type=int, help="per-call deadline (default: the daemon's, 5000)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log each iteration's signals")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        worker = make_worker(args.socket, fast=args.fast, slow=args.slow, full_spread=args.full_spread,
                             cross_only=args.cross_only, strategy_name=args.strategy_name,
                             timeout_ms=args.timeout_ms, on_failure="fallback" if args.fallback else None)
    except ValueError as e:
        ap.error(str(e))
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    try:
        worker.run()
    except (tradewire.RPCError, tradewire.UntrustedSocket) as e:
        print(f"ma_crossover_strategy: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
