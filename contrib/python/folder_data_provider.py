#!/usr/bin/env python3
"""Folder data provider: an example remote stage for tradewire.

Registers as the ``data`` stage in mode ``replace``, group name ``folder``:
the daemon asks it for ``{"symbols": [...]}`` and uses the market data it
returns instead of its configured provider's.

For each symbol it reads ``DIR/SYMBOL.json`` (the symbol as the daemon sends
it, upper case), which holds either

* a MarketData object: ``{"symbol", "timeframe", "bars": [...], "quote",
  "latest_trade"}`` (``symbol`` is set to the file's symbol, ``timeframe``
  defaults to ``--timeframe``, ``quote``/``latest_trade`` to null), or
* a bare list of bars: ``[{"timestamp", "open", "high", "low", "close",
  "volume"}, ...]``, wrapped into a MarketData object.

Files are read on every call, so edits show up in the next iteration.  A
symbol whose file is missing or unusable (not JSON, no bars, a bar without
one of the six fields) is left out; the daemon reports it in the run's
``errors``.  ``contrib/python/sample-data/`` has two symbols to try (ACME as a
MarketData object, ZETA as a bare list; 60 daily bars each).

    python3 contrib/python/folder_data_provider.py --socket PATH --dir contrib/python/sample-data

Stop it with Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from typing import Any, Dict, List, Optional

try:
    import tradewire
except ImportError:  # run from a checkout without `pip install clients/python`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
    import tradewire

GROUP = "folder"
BAR_FIELDS = ("timestamp", "open", "high", "low", "close", "volume")
DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample-data")

log = logging.getLogger("folder-data")


def load_symbol(directory: str, symbol: str, timeframe: str = "1Day") -> Optional[Dict[str, Any]]:
    """MarketData for ``symbol`` from ``directory/SYMBOL.json``, or ``None``."""
    if not symbol or os.sep in symbol or symbol.startswith("."):
        return None
    path = os.path.join(directory, f"{symbol}.json")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        log.info("%s: no file %s", symbol, path)
        return None
    except (OSError, ValueError) as e:
        log.warning("%s: cannot read %s: %s", symbol, path, e)
        return None
    if isinstance(doc, list):
        md: Dict[str, Any] = {"bars": doc}
    elif isinstance(doc, dict):
        md = dict(doc)
    else:
        log.warning("%s: %s holds neither a MarketData object nor a list of bars", symbol, path)
        return None
    bars = md.get("bars")
    if not isinstance(bars, list) or not bars:
        log.warning("%s: %s has no bars", symbol, path)
        return None
    for i, bar in enumerate(bars):
        if not isinstance(bar, dict) or any(k not in bar for k in BAR_FIELDS):
            log.warning("%s: %s bar %d lacks one of %s", symbol, path, i, ", ".join(BAR_FIELDS))
            return None
    md["symbol"] = symbol
    md.setdefault("timeframe", timeframe)
    md.setdefault("quote", None)
    md.setdefault("latest_trade", None)
    return md


def load_market_data(directory: str, symbols: Any, timeframe: str = "1Day") -> Dict[str, Dict[str, Any]]:
    """The data stage's result: ``{SYMBOL: MarketData}`` for the symbols that have a usable file."""
    out: Dict[str, Dict[str, Any]] = {}
    for sym in symbols if isinstance(symbols, list) else []:
        if isinstance(sym, str):
            md = load_symbol(directory, sym, timeframe)
            if md is not None:
                out[sym] = md
    return out


def make_worker(
    socket_path: Optional[str] = None,
    *,
    directory: str = DEFAULT_DIR,
    timeframe: str = "1Day",
    on_failure: Optional[str] = None,
    timeout_ms: Optional[int] = None,
    **worker_options: Any,
) -> "tradewire.StageWorker":
    if not os.path.isdir(directory):
        raise ValueError(f"{directory} is not a directory")
    worker = tradewire.StageWorker(socket_path, **worker_options)

    @worker.stage("data", name=GROUP, mode="replace", on_failure=on_failure, timeout_ms=timeout_ms)
    def folder(call: "tradewire.StageCall") -> Dict[str, Dict[str, Any]]:
        symbols = call.input.get("symbols") if isinstance(call.input, dict) else None
        data = load_market_data(directory, symbols, timeframe)
        log.info("iteration %s: %d of %d symbol(s) from %s", call.iteration, len(data),
                 len(symbols or []), directory)
        return data

    return worker


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--socket", metavar="PATH", help="the daemon's socket (default: the usual rules)")
    ap.add_argument("--dir", default=DEFAULT_DIR, help="folder of SYMBOL.json files (default: the sample data)")
    ap.add_argument("--timeframe", default="1Day", help="timeframe for files that give none (default %(default)s)")
    ap.add_argument("--fallback", action="store_true",
                    help="register with on_failure=fallback: the daemon's provider runs when this one fails")
    ap.add_argument("--timeout-ms", type=int, help="per-call deadline (default: the daemon's, 5000)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log each request")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        worker = make_worker(args.socket, directory=args.dir, timeframe=args.timeframe,
                             on_failure="fallback" if args.fallback else None, timeout_ms=args.timeout_ms)
    except ValueError as e:
        ap.error(str(e))
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    try:
        worker.run()
    except (tradewire.RPCError, tradewire.UntrustedSocket) as e:
        print(f"folder_data_provider: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
