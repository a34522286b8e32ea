"""Durable consumers (docs/PROTOCOL.md section 11) through Consumer and AsyncConsumer,
against a live daemon: ack, nak, ack_wait, dead letters, queue groups, max_in_flight,
restarts, and the typed errors."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from typing import Dict, List

import pytest

from support import wait_until
from tradewire import (
    AsyncConsumer,
    Client,
    Consumer,
    DeadLetterNotFoundError,
    Delivery,
    InvalidParams,
    RateLimitedError,
    UnknownConsumerError,
)


@pytest.fixture
def cname() -> str:
    """A unique consumer name for this test."""
    return f"c.{uuid.uuid4().hex[:12]}"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def publish(socket_path: str, etype: str, n: int, start: int = 0) -> List[int]:
    """Publishes ``{"i": start..start+n-1}``; returns their seqs."""
    with Client(socket_path) as c:
        return [c.publish(etype, {"i": i})["seq"] for i in range(start, start + n)]


def consumer_row(socket_path: str, name: str) -> Dict:
    with Client(socket_path) as c:
        rows = [r for r in c.get_consumers()["consumers"] if r["consumer"] == name]
    assert len(rows) == 1, rows
    return rows[0]


def take(c: Consumer, n: int, timeout: float = 10.0) -> List[Delivery]:
    """The next ``n`` deliveries (fails after ``timeout`` seconds)."""
    got: List[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(got)} of {n} deliveries within {timeout} s: {got}"
        d = c.get(timeout=left)
        if d is not None:
            got.append(d)
    return got


# ---------------------------------------------------------------------------
# blocking Consumer


def test_ack_settles_each_delivery(socket_path: str, etype: str, cname: str) -> None:
    with Consumer(cname, etype, socket_path, ack_wait_ms=1500) as c:
        assert c.subscription and c.subscription.startswith("s-")
        seqs = publish(socket_path, etype, 3)
        ds = take(c, 3)
        assert [d.seq for d in ds] == seqs
        assert [d.data for d in ds] == [{"i": 0}, {"i": 1}, {"i": 2}]
        assert all(d.attempt == 1 and d.consumer == cname and d.event_type == etype for d in ds)
        assert ds[0].event.delivery == {"consumer": cname, "attempt": 1}
        assert [d.ack() for d in ds] == [1, 1, 1]
        assert all(d.settled == "acked" for d in ds)
        assert ds[0].ack() == 0, "a seq no longer outstanding acks nothing"
        # acknowledged: nothing comes back after ack_wait
        assert c.get(timeout=2.0) is None
        row = consumer_row(socket_path, cname)
        assert row["pattern"] == etype and row["pending"] == 0 and row["members"] == 1
        assert row["position"] >= seqs[-1]
        assert row["ack_wait_ms"] == 1500


def test_ack_up_to_acknowledges_a_batch(socket_path: str, etype: str, cname: str) -> None:
    with Consumer(cname, etype, socket_path, ack_wait_ms=1500) as c:
        seqs = publish(socket_path, etype, 10)
        ds = take(c, 10)
        assert [d.seq for d in ds] == seqs
        assert c.ack_up_to(seqs[6]) == 7
        assert consumer_row(socket_path, cname)["pending"] == 3
        # the three left come again after ack_wait, with attempt 2
        again = take(c, 3)
        assert [(d.seq, d.attempt) for d in again] == [(s, 2) for s in seqs[7:]]
        assert c.ack_up_to(seqs[-1]) == 3
        assert c.get(timeout=1.0) is None


def test_nak_with_delay_redelivers_with_the_next_attempt(socket_path: str, etype: str, cname: str) -> None:
    with Consumer(cname, etype, socket_path, ack_wait_ms=30_000) as c:
        (seq,) = publish(socket_path, etype, 1)
        (first,) = take(c, 1)
        assert (first.seq, first.attempt) == (seq, 1)
        naked_at = time.monotonic()
        assert first.nak(delay_ms=400, error="not yet") is True
        assert first.settled == "naked"
        (second,) = take(c, 1)
        assert time.monotonic() - naked_at >= 0.35, "redelivered before the nak's delay"
        assert (second.seq, second.attempt, second.data) == (seq, 2, {"i": 0})
        # without a delay: at once
        assert second.nak() is True
        (third,) = take(c, 1, timeout=5)
        assert (third.seq, third.attempt) == (seq, 3)
        row = consumer_row(socket_path, cname)
        assert (row["pending"], row["redelivered"]) == (1, 1), "one event out, past its first attempt"
        assert third.ack() == 1
        assert consumer_row(socket_path, cname)["redelivered"] == 0


def test_ack_wait_expiry_redelivers(socket_path: str, etype: str, cname: str) -> None:
    with Consumer(cname, etype, socket_path, ack_wait_ms=600) as c:
        (seq,) = publish(socket_path, etype, 1)
        (first,) = take(c, 1)
        assert first.attempt == 1
        (second,) = take(c, 1)  # not acknowledged within 600 ms
        assert (second.seq, second.attempt) == (seq, 2)
        assert second.ack() == 1
        assert c.get(timeout=1.0) is None


def test_max_deliver_makes_a_dead_letter_and_retry_brings_it_back(
    socket_path: str, etype: str, cname: str
) -> None:
    with Consumer(cname, etype, socket_path, ack_wait_ms=30_000, max_deliver=2) as c:
        seqs = publish(socket_path, etype, 2)
        first = take(c, 1)[0]
        assert first.seq == seqs[0]
        assert first.nak(error="boom 1")
        redelivered = [d for d in take(c, 2) if d.seq == seqs[0]]
        assert [d.attempt for d in redelivered] == [2]
        assert redelivered[0].nak(error="boom 2")
        # two attempts: a dead letter; the consumer has moved on to the second event
        with Client(socket_path) as cl:
            letters = wait_until(
                lambda: cl.get_dead_letters(consumer=cname)["dead_letters"], what="the dead letter"
            )
            assert len(letters) == 1
            dl = letters[0]
            assert (dl["consumer"], dl["seq"], dl["event_type"], dl["attempts"]) == (cname, seqs[0], etype, 2)
            assert dl["last_error"] == "boom 2"
            assert dl["first_failed"] and dl["last_failed"]
            assert dl["event"]["data"] == {"i": 0}
            assert cl.get_dead_letters(consumer=cname, limit=1)["dead_letters"] == letters  # reading removes nothing
            assert consumer_row(socket_path, cname)["dead_letters"] == 1

            assert cl.retry_dead_letter(dl["id"]) == {"ok": True}
            back = next(d for d in take(c, 1) if d.seq == seqs[0])
            assert back.attempt == 1 and back.data == {"i": 0}
            assert back.ack() == 1
            assert cl.get_dead_letters(consumer=cname)["dead_letters"] == []

            with pytest.raises(DeadLetterNotFoundError) as e:
                cl.retry_dead_letter(dl["id"])
            assert e.value.code == -32041 and e.value.type == "dead_letter_not_found"
            assert cl.discard_dead_letter(dl["id"]) == {"removed": 0}


def test_discard_dead_letter(socket_path: str, etype: str, cname: str) -> None:
    with Consumer(cname, etype, socket_path, max_deliver=1) as c:
        (seq,) = publish(socket_path, etype, 1)
        (d,) = take(c, 1)
        assert d.nak(error="no")
        with Client(socket_path) as cl:
            (dl,) = wait_until(lambda: cl.get_dead_letters(consumer=cname)["dead_letters"], what="the dead letter")
            assert dl["seq"] == seq and dl["attempts"] == 1 and dl["last_error"] == "no"
            assert cl.discard_dead_letter(dl["id"]) == {"removed": 1}
            assert cl.get_dead_letters(consumer=cname)["dead_letters"] == []
        assert c.get(timeout=0.5) is None


def test_a_queue_group_shares_the_events(socket_path: str, etype: str, cname: str) -> None:
    """Two connections with one consumer name: each event goes to exactly one of them."""
    a = Consumer(cname, etype, socket_path, ack_wait_ms=30_000).open()
    b = Consumer(cname, etype, socket_path, ack_wait_ms=30_000).open()
    got: Dict[str, List[int]] = {"a": [], "b": []}
    stop = threading.Event()

    def drain(c: Consumer, into: List[int]) -> None:
        while not stop.is_set():
            d = c.get(timeout=0.1)
            if d is not None:
                into.append(d.seq)
                d.ack()

    threads = [threading.Thread(target=drain, args=(c, got[k])) for c, k in ((a, "a"), (b, "b"))]
    try:
        assert consumer_row(socket_path, cname)["members"] == 2
        for t in threads:
            t.start()
        seqs = publish(socket_path, etype, 40)
        wait_until(lambda: len(got["a"]) + len(got["b"]) >= 40, what="40 deliveries")
        time.sleep(0.3)  # nothing more may come
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        a.close()
        b.close()
    assert sorted(got["a"] + got["b"]) == seqs, "each event exactly once over the group"
    assert not set(got["a"]) & set(got["b"])


def test_max_in_flight_bounds_unacknowledged_deliveries(socket_path: str, etype: str, cname: str) -> None:
    with Consumer(cname, etype, socket_path, ack_wait_ms=30_000, max_in_flight=3) as c:
        seqs = publish(socket_path, etype, 10)
        ds = take(c, 3)
        assert [d.seq for d in ds] == seqs[:3]
        assert c.get(timeout=0.7) is None, "a fourth delivery while three are unacknowledged"
        assert consumer_row(socket_path, cname)["pending"] == 3
        assert ds[0].ack() == 1
        (fourth,) = take(c, 1)
        assert fourth.seq == seqs[3]
        assert c.get(timeout=0.5) is None
        assert c.ack_up_to(seqs[3]) == 3
        rest = take(c, 3)
        assert [d.seq for d in rest] == seqs[4:7]


def test_since_seq_places_a_new_consumer(socket_path: str, etype: str, cname: str) -> None:
    seqs = publish(socket_path, etype, 4)
    with Consumer(cname, etype, socket_path, since_seq=seqs[1]) as c:
        ds = take(c, 2)
        assert [d.seq for d in ds] == seqs[2:]
        assert c.ack_up_to(seqs[-1]) == 2


def test_another_pattern_for_an_existing_consumer_is_refused(socket_path: str, etype: str, cname: str) -> None:
    with Consumer(cname, etype, socket_path):
        with pytest.raises(InvalidParams):
            Consumer(cname, etype + ".other", socket_path).open()


def test_a_member_that_vanishes_before_its_ack_never_joins(socket_path: str, etype: str, cname: str) -> None:
    # The subscribe is sent and the connection closed at once, before the daemon answers
    # (on a cluster node the answer waits for the database): no member is left behind to
    # take events into a closed socket.
    request = {"jsonrpc": "2.0", "id": 1, "method": "subscribe",
               "params": {"event_type": etype, "consumer": cname, "ack_wait_ms": 20000}}
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(socket_path)
        raw.sendall((json.dumps(request) + "\n").encode())
    time.sleep(0.5)
    with Consumer(cname, etype, socket_path, ack_wait_ms=20000) as c:
        seqs = publish(socket_path, etype, 3)
        assert [d.seq for d in take(c, 3, timeout=5)] == seqs
    assert consumer_row(socket_path, cname)["members"] == 0


def test_ack_for_an_unknown_consumer(socket_path: str, etype: str, cname: str) -> None:
    with Client(socket_path) as c:
        with pytest.raises(UnknownConsumerError) as e:
            c.ack(cname, 1)
        assert e.value.code == -32040 and e.value.type == "unknown_consumer"
        with pytest.raises(UnknownConsumerError):
            c.nak(cname, 1, delay_ms=10)
    # another connection's consumer is not this connection's either
    with Consumer(cname, etype, socket_path) as member, Client(socket_path) as other:
        (seq,) = publish(socket_path, etype, 1)
        (d,) = take(member, 1)
        with pytest.raises(UnknownConsumerError):
            other.ack(cname, seq)
        assert d.ack() == 1


def test_delete_consumer(socket_path: str, etype: str, cname: str) -> None:
    with Consumer(cname, etype, socket_path):
        pass
    with Client(socket_path) as c:
        assert any(r["consumer"] == cname for r in c.get_consumers()["consumers"])
        assert c.delete_consumer(cname) == {"removed": 1}
        assert not any(r["consumer"] == cname for r in c.get_consumers()["consumers"])
        assert c.delete_consumer(cname) == {"removed": 0}


def test_consumer_keywords_need_a_consumer(socket_path: str, etype: str) -> None:
    with Client(socket_path) as c:
        with pytest.raises(ValueError):
            c.subscribe(etype, max_deliver=3)
        with pytest.raises(ValueError):
            c.subscribe(etype, etype + ".b", consumer="x")
        with pytest.raises(ValueError):
            c.ack("x")


def test_rate_limited_error_carries_retry_after(daemon_factory) -> None:
    d = daemon_factory.start(extra=["--publish-rate", "1/1"])
    with Client(d.socket_path) as c:
        c.publish("rl.one")
        with pytest.raises(RateLimitedError) as e:
            c.publish("rl.two")
    assert e.value.code == -32002 and e.value.type == "rate_limited"
    assert isinstance(e.value.retry_after_ms, int) and e.value.retry_after_ms > 0
    assert "retry after" in str(e.value)


@pytest.mark.journal_only
def test_position_survives_a_daemon_restart(daemon_factory, tmp_path) -> None:
    """Journal mode: acknowledged events stay acknowledged, unacknowledged ones come
    again (attempts carried over), and the consumer reconnects by itself."""
    data = str(tmp_path / "data")
    d1 = daemon_factory.start(extra=["--data-dir", data])
    path = d1.socket_path
    c = Consumer("restart.c", "rs.*", path, ack_wait_ms=3000).open()
    try:
        seqs = publish(path, "rs.e", 5)
        ds = take(c, 5)
        assert c.ack_up_to(seqs[2]) == 3
        assert d1.stop() == 0
        d2 = daemon_factory.start(socket_path=path, extra=["--data-dir", data])
        later = publish(path, "rs.e", 2, start=5)
        again = sorted(take(c, 4, timeout=20), key=lambda d: d.seq)
        assert c.reconnects >= 1
        assert [d.seq for d in again] == seqs[3:] + later
        attempts = [d.attempt for d in again]
        assert attempts[0] >= 2 and attempts[1] >= 2, "delivered before the restart: attempts carried over"
        assert attempts[2:] == [1, 1]
        assert all(d.ack() == 1 for d in again)
        row = consumer_row(path, "restart.c")
        assert row["pending"] == 0 and row["position"] >= later[-1]
        assert ds[0].seq == seqs[0]
        assert d2.running()
    finally:
        c.close()


# ---------------------------------------------------------------------------
# AsyncConsumer


async def atake(c: AsyncConsumer, n: int, timeout: float = 10.0) -> list:
    got: list = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(got) < n:
        left = deadline - loop.time()
        assert left > 0, f"only {len(got)} of {n} deliveries within {timeout} s"
        d = await c.get(timeout=left)
        if d is not None:
            got.append(d)
    return got


def test_async_consumer_ack_and_nak(socket_path: str, etype: str, cname: str) -> None:
    async def main():
        async with AsyncConsumer(cname, etype, socket=socket_path, ack_wait_ms=30_000) as c:
            seqs = publish(socket_path, etype, 3)
            ds = []
            async for d in c:
                ds.append(d)
                if len(ds) == 3:
                    break
            assert [(d.seq, d.attempt, d.consumer) for d in ds] == [(s, 1, cname) for s in seqs]
            assert await ds[0].ack() == 1
            assert await ds[1].nak(delay_ms=200, error="later") is True
            assert await c.ack(ds[2].seq) == 1
            (again,) = await atake(c, 1)
            assert (again.seq, again.attempt) == (seqs[1], 2)
            assert await again.ack() == 1
            assert await c.get(timeout=0.5) is None

    run(main())


def test_async_consumer_ack_wait_and_dead_letter(socket_path: str, etype: str, cname: str) -> None:
    async def main():
        async with AsyncConsumer(cname, etype, socket_path, ack_wait_ms=200, max_deliver=2) as c:
            (seq,) = publish(socket_path, etype, 1)
            ds = await atake(c, 2)  # never acknowledged: ack_wait twice
            assert [(d.seq, d.attempt) for d in ds] == [(seq, 1), (seq, 2)]
            cl = c.client
            assert cl is not None
            letters = []
            for _ in range(100):
                letters = (await cl.get_dead_letters(consumer=cname))["dead_letters"]
                if letters:
                    break
                await asyncio.sleep(0.05)
            assert [(dl["seq"], dl["attempts"]) for dl in letters] == [(seq, 2)]
            assert await cl.retry_dead_letter(letters[0]["id"]) == {"ok": True}
            (back,) = await atake(c, 1)
            assert (back.seq, back.attempt) == (seq, 1)
            assert await back.ack() == 1
            assert await c.ack_up_to(seq) == 0
            with pytest.raises(DeadLetterNotFoundError):
                await cl.retry_dead_letter(letters[0]["id"])

    run(main())


def test_async_queue_group(socket_path: str, etype: str, cname: str) -> None:
    async def main():
        async with AsyncConsumer(cname, etype, socket_path) as a, AsyncConsumer(cname, etype, socket_path) as b:
            seqs = publish(socket_path, etype, 20)
            seen: List[int] = []

            async def drain(c: AsyncConsumer) -> None:
                while len(seen) < 20:
                    d = await c.get(timeout=0.1)
                    if d is not None:
                        seen.append(d.seq)
                        await d.ack()

            await asyncio.wait_for(asyncio.gather(drain(a), drain(b)), 15)
            assert sorted(seen) == seqs

    run(main())


def test_async_unknown_consumer(socket_path: str, cname: str) -> None:
    async def main():
        from tradewire import AsyncClient

        async with AsyncClient(socket_path) as c:
            with pytest.raises(UnknownConsumerError):
                await c.ack(cname, up_to_seq=5)

    run(main())


@pytest.mark.journal_only
def test_async_consumer_reconnects_after_a_restart(daemon_factory, tmp_path) -> None:
    data = str(tmp_path / "data")
    d1 = daemon_factory.start(extra=["--data-dir", data])
    path = d1.socket_path

    async def main():
        async with AsyncConsumer("arestart", "ar.*", path, ack_wait_ms=3000) as c:
            (s1,) = publish(path, "ar.e", 1)
            (d,) = await atake(c, 1)
            assert d.seq == s1
            await asyncio.get_running_loop().run_in_executor(None, d1.stop)
            # the connection is gone: the ack is lost, not raised; the event comes again
            assert await d.ack() == 0
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: daemon_factory.start(socket_path=path, extra=["--data-dir", data])
            )
            (again,) = await atake(c, 1, timeout=20)
            assert again.seq == s1 and again.attempt >= 2
            assert await again.ack() == 1
            assert c.reconnects >= 1

    run(main())
