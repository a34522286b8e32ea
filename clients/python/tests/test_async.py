"""AsyncClient against a live daemon (plain asyncio.run, no plugin needed)."""
from __future__ import annotations

import asyncio

import pytest

from tradewire import (
    AsyncClient,
    DaemonUnavailable,
    Event,
    EventsDropped,
    InvalidParams,
    MethodNotFound,
    NotConnected,
    SubscriptionClosed,
)
from tradewire.aio import DEFAULT_LIMIT, MAX_LIMIT

from test_client import RUN_PIPELINE_KEYS


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_async_ping_status(socket_path: str, shared_daemon) -> None:
    async def main():
        async with AsyncClient(socket_path) as c:
            assert await c.ping() == {"pong": True}
            st = await c.get_status()
            assert st["pid"] == shared_daemon.pid and st["api_level"] == 2
            assert "methods" in await c.discover()
            assert "total_subscribers" in await c.get_stats()

    run(main())


def test_async_publish_history(socket_path: str, etype: str) -> None:
    async def main():
        c = await AsyncClient.open(socket_path)
        try:
            rs = [await c.publish(etype, {"k": i}, {"m": i}) for i in range(3)]
            h = await c.get_event_history(event_type=etype)
            assert [e["seq"] for e in h["events"]] == [r["seq"] for r in rs]
            assert [e["data"] for e in h["events"]] == [{"k": 0}, {"k": 1}, {"k": 2}]
            assert [e["metadata"]["m"] for e in h["events"]] == [0, 1, 2]
        finally:
            await c.close()

    run(main())


def test_async_subscribe_async_for(socket_path: str, etype: str) -> None:
    async def main():
        async with AsyncClient(socket_path) as listener, AsyncClient(socket_path) as pub:
            sub = await listener.subscribe(etype)
            assert sub.id.startswith("s-")
            seqs = []
            for i in range(10):
                seqs.append((await pub.publish(etype, {"i": i}))["seq"])
            got = []
            async for ev in sub:
                assert isinstance(ev, Event) and ev.subscription == sub.id
                got.append(ev)
                if len(got) == 10:
                    break
            assert [e.seq for e in got] == seqs
            assert [e.data for e in got] == [{"i": i} for i in range(10)]
            assert await sub.get(timeout=0.2) is None
            await sub.close()
            with pytest.raises(SubscriptionClosed):
                await sub.get(timeout=1)

    run(main())


def test_async_subscribe_without_await_and_since_seq(socket_path: str, etype: str) -> None:
    async def main():
        async with AsyncClient(socket_path) as c:
            first = (await c.publish(etype, "old-1"))["seq"]
            await c.publish(etype, "old-2")
            got = []
            async for ev in c.subscribe(etype, since_seq=first - 1):
                got.append(ev.data)
                if len(got) == 2:
                    await c.publish(etype, "live")
                if len(got) == 3:
                    break
            assert got == ["old-1", "old-2", "live"]

    run(main())


def test_async_multi_pattern_and_events_during_calls(socket_path: str, etype: str) -> None:
    async def main():
        async with AsyncClient(socket_path) as c:
            sub = await c.subscribe(etype + ".a", etype + ".*")
            seqs = [(await c.publish(f"{etype}.{x}", x))["seq"] for x in "abab"]
            got = [await sub.get(timeout=10) for _ in range(4)]
            assert [e.seq for e in got] == seqs  # each once though ".a" matches both patterns
            assert await sub.get(timeout=0.3) is None
            assert (await c.unsubscribe(sub))["removed"] == 2

    run(main())


def test_async_errors_typed(socket_path: str) -> None:
    async def main():
        async with AsyncClient(socket_path) as c:
            with pytest.raises(MethodNotFound) as e1:
                await c.call("nope.nope")
            assert e1.value.code == -32601 and e1.value.type == "method_not_found"
            with pytest.raises(InvalidParams) as e2:
                await c.publish(123)  # type: ignore[arg-type]
            assert e2.value.code == -32602 and e2.value.type == "invalid_params"
            with pytest.raises(InvalidParams):
                await c.run_pipeline(["bad sym!"])
            assert await c.ping() == {"pong": True}

    run(main())


def test_async_run_pipeline(socket_path: str) -> None:
    async def main():
        async with AsyncClient(socket_path) as c:
            r = await c.run_pipeline(["AAPL", "MSFT"], include_market_data=True)
            assert set(r) >= RUN_PIPELINE_KEYS
            for sym, md in r["market_data"].items():
                assert md["symbol"] == sym and isinstance(md["bars"], list) and md["bars"]

    run(main())


def test_async_concurrent_calls_match_ids(socket_path: str) -> None:
    async def main():
        async with AsyncClient(socket_path) as c:
            res = await asyncio.gather(*[c.publish("pytest.concurrent", i) for i in range(50)], c.ping())
            assert res[-1] == {"pong": True}
            seqs = [r["seq"] for r in res[:-1]]
            assert len(set(seqs)) == 50

    run(main())


def test_async_large_messages(socket_path: str, etype: str) -> None:
    """A ~900 KB event arrives whole (asyncio's default 64 KiB limit would choke);
    a line longer than `limit` is still read."""
    big = "y" * 900_000

    async def main():
        async with AsyncClient(socket_path) as c:
            assert c.limit == DEFAULT_LIMIT and DEFAULT_LIMIT > 1024 * 1024
            sub = await c.subscribe(etype)
            await c.publish(etype, big)
            ev = await sub.get(timeout=10)
            assert ev.data == big
        async with AsyncClient(socket_path, limit=4096) as small:
            h = await small.get_event_history(event_type=etype)
            assert h["events"][-1]["data"] == big

    run(main())
    with pytest.raises(ValueError):
        AsyncClient(socket_path, limit=MAX_LIMIT + 1)
    assert AsyncClient(socket_path, limit=MAX_LIMIT).limit == MAX_LIMIT


def test_async_history_gap_notice(daemon_factory) -> None:
    # Pinned to --ephemeral (whatever TW_TEST_STORAGE says): the gap comes from the in-memory
    # history ring of 3; a journal serves since_seq from the whole journal, with no gap.
    d = daemon_factory.start(history_capacity=3, extra=["--ephemeral"])

    async def main():
        async with AsyncClient(d.socket_path) as c:
            for i in range(6):
                await c.publish("agap", i)
            sub = await c.subscribe("agap", since_seq=0)
            first = await sub.get(timeout=10)
            assert isinstance(first, EventsDropped) and first.count is None
            assert (first.first_seq, first.last_seq) == (1, 3)
            assert [(await sub.get(timeout=10)).data for _ in range(3)] == [3, 4, 5]

    run(main())


def test_async_shutdown_ends_iteration(daemon_factory) -> None:
    d = daemon_factory.start()

    async def main():
        async with AsyncClient(d.socket_path) as watcher, AsyncClient(d.socket_path) as admin:
            sub = await watcher.subscribe("*")
            assert await admin.shutdown() == {"ok": True}
            items = []
            while True:  # until the shutdown notice ends it (bounded by run()'s 60 s)
                try:
                    item = await sub.get(timeout=15)
                except SubscriptionClosed:
                    break
                assert item is not None, "subscription did not end"
                items.append(item)
            assert all(isinstance(i, (Event, EventsDropped)) for i in items)
            assert sub.shutdown_reason is not None
            await asyncio.sleep(0.2)
            with pytest.raises(Exception) as ei:
                await watcher.ping()
            assert isinstance(ei.value, NotConnected) or getattr(ei.value, "type", None) == "shutting_down"

    run(main())
    assert d.proc.wait(15) == 0


def test_async_unavailable(tmp_path) -> None:
    async def main():
        with pytest.raises(DaemonUnavailable) as ei:
            await AsyncClient.open(str(tmp_path / "none.sock"))
        assert "make run" in str(ei.value)

    run(main())
