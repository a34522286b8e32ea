"""run_handler: resume with since_seq, and reconnect across a daemon restart."""
from __future__ import annotations

import queue
import threading
from typing import Any, Dict, List

from support import wait_until
from tradewire import Client, run_handler


def _start(pattern, socket_path, **kw):
    received: List[Any] = []
    stop = threading.Event()
    connected: "queue.Queue[Dict[str, Any]]" = queue.Queue()
    result: List[Any] = []

    def target() -> None:
        result.append(
            run_handler(
                pattern,
                lambda ev: received.append(ev),
                socket_path=socket_path,
                stop_event=stop,
                on_connect=connected.put,
                reconnect_delay=0.1,
                poll_interval=0.1,
                **kw,
            )
        )

    t = threading.Thread(target=target, name="run_handler", daemon=True)
    t.start()
    return received, stop, connected, t, result


def test_run_handler_since_seq_and_live(socket_path: str, etype: str) -> None:
    with Client(socket_path) as c:
        seqs = [c.publish(etype, i)["seq"] for i in range(5)]
        received, stop, connected, t, result = _start(etype, socket_path, since_seq=seqs[1])
        try:
            info = connected.get(timeout=10)
            assert info["since_seq"] == seqs[1] and info["restarted"] is False
            live = c.publish(etype, 5)["seq"]
            wait_until(lambda: len(received) >= 4, what="replayed + live events")
        finally:
            stop.set()
            t.join(10)
    assert not t.is_alive()
    assert [e.data for e in received] == [2, 3, 4, 5]
    assert result == [live]


def _start_gated(pattern, socket_path):
    """run_handler in a thread whose reconnect waits for ``gate`` after a disconnect (so a
    test can publish on a restarted daemon first); ``connected`` queues each on_connect."""
    received: List[Any] = []
    stop = threading.Event()
    connected: "queue.Queue[Dict[str, Any]]" = queue.Queue()
    disconnected = threading.Event()
    gate = threading.Event()

    def on_disconnect(exc: BaseException) -> None:
        disconnected.set()
        gate.wait(30)  # hold the reconnect until the test has published on the new daemon

    t = threading.Thread(
        target=run_handler,
        args=(pattern, received.append),
        kwargs=dict(socket_path=socket_path, stop_event=stop, on_connect=connected.put, on_disconnect=on_disconnect,
                    reconnect_delay=0.05, poll_interval=0.1),
        daemon=True,
    )
    t.start()
    return received, stop, connected, disconnected, gate, t


def test_run_handler_reconnects_across_restart(daemon_factory) -> None:
    d1 = daemon_factory.start()
    path = d1.socket_path
    received, stop, connected, disconnected, gate, t = _start_gated("rc.*", path)
    try:
        first = connected.get(timeout=10)
        assert first["restarted"] is False
        pid1 = first["pid"]

        # 1..5 on the first daemon (interleaved with events the handler does not match)
        with Client(path) as c:
            for n in range(1, 6):
                c.publish("rc.payload", {"n": n})
                c.publish("other.noise", {"n": -n})
        wait_until(lambda: len(received) >= 5, what="events 1..5")

        assert d1.stop() == 0  # SIGTERM: shutdown notice, graceful exit
        assert disconnected.wait(15), "handler did not notice the daemon going away"

        d2 = daemon_factory.start(socket_path=path)
        with Client(path) as c:
            assert c.get_status()["pid"] != pid1
            for n in range(6, 9):  # before the handler reconnects
                c.publish("rc.payload", {"n": n})
        gate.set()

        second = connected.get(timeout=15)
        assert second["restarted"] is True and second["since_seq"] == 0 and second["pid"] == d2.pid
        with Client(path) as c:
            for n in range(9, 13):  # after it reconnected
                c.publish("rc.payload", {"n": n})
        wait_until(lambda: len(received) >= 12, timeout=15, what="events 1..12")
    finally:
        gate.set()
        stop.set()
        t.join(10)
    assert not t.is_alive()
    ns = [e.data["n"] for e in received]
    assert ns == list(range(1, 13)), ns  # every payload exactly once, in order
    assert all(e.event_type == "rc.payload" for e in received)
    # seqs are increasing within each daemon's run
    assert [e.seq for e in received[:5]] == sorted(e.seq for e in received[:5])
    assert [e.seq for e in received[5:]] == sorted(e.seq for e in received[5:])


def test_run_handler_resumes_on_the_same_journal_after_a_restart(daemon_factory, tmp_path) -> None:
    """A daemon restarted on the same data dir keeps its seqs: the handler resumes with
    since_seq (no replay from 0, nothing missed, nothing twice)."""
    data = str(tmp_path / "data")
    d1 = daemon_factory.start(extra=["--data-dir", data])
    path = d1.socket_path
    received, stop, connected, disconnected, gate, t = _start_gated("jr.*", path)
    try:
        first = connected.get(timeout=10)
        assert isinstance(first["journal_id"], str)
        with Client(path) as c:
            for n in range(1, 4):
                c.publish("jr.payload", {"n": n})
        wait_until(lambda: len(received) >= 3, what="events 1..3")
        last = received[-1].seq
        assert d1.stop() == 0
        assert disconnected.wait(15)

        d2 = daemon_factory.start(socket_path=path, extra=["--data-dir", data])
        with Client(path) as c:
            for n in range(4, 7):  # before the handler reconnects
                c.publish("jr.payload", {"n": n})
        gate.set()
        second = connected.get(timeout=15)
        assert second["restarted"] is False, "the same journal is the same seq space"
        assert second["journal_id"] == first["journal_id"] and second["pid"] == d2.pid
        assert second["since_seq"] == last
        wait_until(lambda: len(received) >= 6, timeout=15, what="events 1..6")
    finally:
        gate.set()
        stop.set()
        t.join(10)
    assert not t.is_alive()
    assert [e.data["n"] for e in received] == [1, 2, 3, 4, 5, 6]
    seqs = [e.seq for e in received]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6, "seqs keep increasing across the restart"


def test_run_handler_callback_error_propagates(socket_path: str, etype: str) -> None:
    """An exception from the callback stops run_handler (even an OSError: it is not a disconnect)."""
    errors: List[BaseException] = []

    def callback(ev) -> None:
        raise OSError(28, "No space left on device")

    def target() -> None:
        try:
            run_handler(etype, callback, socket_path=socket_path, since_seq=0, reconnect_delay=0.05,
                        poll_interval=0.1)
        except BaseException as e:  # noqa: B902
            errors.append(e)

    with Client(socket_path) as c:
        c.publish(etype, 1)
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], OSError) and errors[0].errno == 28


def test_run_handler_fills_a_slow_consumer_gap_from_history(daemon_factory) -> None:
    """While the callback is stuck the daemon drops events for it (8 MiB outbox budget);
    run_handler fetches the dropped ones from history: every event once, in order."""
    d = daemon_factory.start()
    gate = threading.Event()
    got: List[int] = []
    gaps: List[Any] = []

    def callback(ev) -> None:
        if not got:
            gate.wait(30)  # stall on the first event while ~18 MB pile up behind it
        got.append(ev.data["n"])

    stop = threading.Event()
    connected: "queue.Queue[Dict[str, Any]]" = queue.Queue()
    t = threading.Thread(
        target=run_handler,
        args=("bulk", callback),
        kwargs=dict(socket_path=d.socket_path, stop_event=stop, on_gap=gaps.append, on_connect=connected.put,
                    poll_interval=0.1),
        daemon=True,
    )
    t.start()
    n = 30
    try:
        connected.get(timeout=10)
        pad = "x" * 600_000
        with Client(d.socket_path) as c:
            for i in range(n):
                c.publish("bulk", {"n": i, "pad": pad})
            assert c.get_stats()["events_dropped"] > 0, "the daemon dropped nothing: the test proves nothing"
        gate.set()
        wait_until(lambda: len(got) >= n, timeout=30, what=f"{n} events")
    finally:
        gate.set()
        stop.set()
        t.join(10)
    assert got == list(range(n))
    assert gaps == []
