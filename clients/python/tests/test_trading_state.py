"""The kill switch (set_trading_state, PROTOCOL §12) through both clients."""
from __future__ import annotations

import asyncio

import pytest

from tradewire import AsyncClient, Client, InvalidParams


def test_halt_reduce_resume(daemon_factory) -> None:
    d = daemon_factory.start()
    with Client(d.socket_path) as c:
        assert c.get_status()["trading_state"]["state"] == "active"
        halted = c.set_trading_state("halted", "from python")
        assert set(halted) == {"state", "previous", "since", "reason"}
        assert (halted["state"], halted["previous"], halted["reason"]) == ("halted", "active", "from python")
        assert c.get_status()["trading_state"] == {
            "state": "halted",
            "since": halted["since"],
            "reason": "from python",
        }
        run = c.run_pipeline(symbols=["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA", "NVDA"], strategy="TrendFollowing")
        orders = [s for s in run["rejected_signals"] if s["action"] != "HOLD"]
        assert orders and all(s["rejection_reason"] == "trading halted: from python" for s in orders)
        assert run["execution_results"] == []
        with pytest.raises(InvalidParams) as bad:
            c.set_trading_state("paused", "x")
        assert bad.value.errors[0]["path"] == "/state"
        with pytest.raises(InvalidParams) as empty:
            c.set_trading_state("active", "")
        assert empty.value.errors[0]["path"] == "/reason"
        events = c.get_event_history(event_type="trading_state_changed")["events"]
        assert [e["data"] for e in events] == [
            {"state": "halted", "previous": "active", "reason": "from python", "by": "operator", "since": halted["since"]}
        ]

    async def main() -> None:
        async with AsyncClient(d.socket_path) as c:
            reducing = await c.set_trading_state("reducing", "async")
            assert (reducing["state"], reducing["previous"]) == ("reducing", "halted")
            active = await c.set_trading_state("active", "done")
            assert (active["state"], active["previous"]) == ("active", "reducing")

    asyncio.run(asyncio.wait_for(main(), 60))
