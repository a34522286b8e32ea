#!/usr/bin/env python3
"""Regenerate the sample data of folder_data_provider.py (deterministic).

ACME.json: a MarketData object; ZETA.json: a bare list of bars.  60 daily bars
each (business days from 2025-01-02), a seeded random walk: ACME drifts up,
ZETA drifts down.  One bar per line to keep the files small and diffable.

    python3 contrib/python/sample-data/make_sample_data.py
"""
from __future__ import annotations

import json
import os
import random
from datetime import date, timedelta
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
BARS = 60


def bars(seed: int, start_price: float, drift: float) -> List[Dict[str, Any]]:
    rng = random.Random(seed)
    out: List[Dict[str, Any]] = []
    day = date(2025, 1, 2)
    close = start_price
    while len(out) < BARS:
        if day.weekday() < 5:
            open_ = close
            close = round(open_ * (1 + drift + rng.gauss(0, 0.012)), 2)
            high = round(max(open_, close) * (1 + abs(rng.gauss(0, 0.004))), 2)
            low = round(min(open_, close) * (1 - abs(rng.gauss(0, 0.004))), 2)
            out.append({"timestamp": f"{day.isoformat()}T00:00:00.000000Z", "open": round(open_, 2), "high": high,
                        "low": low, "close": close, "volume": rng.randrange(200_000, 2_000_000)})
        day += timedelta(days=1)
    return out


def dump_bars(items: List[Dict[str, Any]]) -> str:
    return "[\n" + ",\n".join(json.dumps(b, separators=(",", ":")) for b in items) + "\n]"


def main() -> None:
    acme = bars(seed=7, start_price=50.0, drift=0.003)
    with open(os.path.join(HERE, "ACME.json"), "w", encoding="utf-8") as f:
        f.write('{"symbol":"ACME","timeframe":"1Day","quote":null,"latest_trade":null,"bars":'
                + dump_bars(acme) + "}\n")
    zeta = bars(seed=11, start_price=120.0, drift=-0.002)
    with open(os.path.join(HERE, "ZETA.json"), "w", encoding="utf-8") as f:
        f.write(dump_bars(zeta) + "\n")


if __name__ == "__main__":
    main()
