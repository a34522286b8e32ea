"""At-least-once under chaos (docs/PROTOCOL.md section 11): a consumer group of three
member processes (tests/chaos_member.py, each a tradewire.Consumer) is SIGKILLed and
restarted at random moments, and the daemon is `kill -9`ed and restarted on the same data
dir and socket, while a publisher publishes N events, retrying every publish that was not
acknowledged.  Every acknowledged event must then be processed (recorded and fsynced by a
member before it acknowledged) at least once; the duplicates are counted and printed.

Settings (environment): TW_CONSUMER_CHAOS_EVENTS (default 2000; `make soak` uses more),
TW_CONSUMER_CHAOS_DAEMON_KILLS (default 2), TW_CONSUMER_CHAOS_RATE (publishes per second,
default 150), TW_CONSUMER_CHAOS_SEED (default: from the clock; printed, so a run can be
repeated).  Journal-only: the daemon is killed and must come back with what it acknowledged.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import pytest

from support import client_env
from tradewire import Client, NotConnected, RPCError, Timeout

MEMBER = str(Path(__file__).with_name("chaos_member.py"))
CONSUMER = "chaos.group"
PATTERN = "chaos.*"
EVENT_TYPE = "chaos.work"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name) or ""
    return int(value) if value else default


class Member:
    """One member process; each incarnation appends to a file of its own."""

    def __init__(self, index: int, socket_path: str, workdir: Path) -> None:
        self.index = index
        self.socket_path = socket_path
        self.workdir = workdir
        self.incarnation = 0
        self.proc: Optional[subprocess.Popen] = None
        self.files: List[Path] = []
        self.logs: List[Path] = []

    def start(self) -> None:
        self.incarnation += 1
        out = self.workdir / f"member{self.index}.{self.incarnation}.seqs"
        log = self.workdir / f"member{self.index}.{self.incarnation}.log"
        self.files.append(out)
        self.logs.append(log)
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, MEMBER, self.socket_path, CONSUMER, PATTERN, str(out)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=client_env(),
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> Optional[int]:
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        return p.returncode

    def processed(self) -> List[Tuple[int, int]]:
        """``(seq, attempt)`` of every complete line (a line cut by SIGKILL was not acknowledged)."""
        out: List[Tuple[int, int]] = []
        for path in self.files:
            if not path.exists():
                continue
            for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
                if line.endswith("\n"):
                    seq, attempt = line.split()
                    out.append((int(seq), int(attempt)))
        return out

    def stderr_tail(self) -> str:
        return "".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in self.logs if p.exists() and p.stat().st_size
        )


class Publisher(threading.Thread):
    """Publishes ``{"i": 0..n-1}`` in order at ``rate`` per second; a publish that was not
    acknowledged (connection lost, timeout, daemon down) is sent again until it is."""

    def __init__(self, socket_path: str, n: int, rate: float) -> None:
        super().__init__(name="chaos-publisher", daemon=True)
        self.socket_path = socket_path
        self.n = n
        self.interval = 1.0 / rate
        self.acked: Dict[int, int] = {}  # i -> seq of its acknowledged publish
        self.retries = 0
        self.error: Optional[BaseException] = None
        self.halt = threading.Event()

    def run(self) -> None:
        client: Optional[Client] = None
        i = 0
        next_at = time.monotonic()
        try:
            while i < self.n and not self.halt.is_set():
                try:
                    if client is None:
                        client = Client(self.socket_path, timeout=10)
                    self.acked[i] = client.publish(EVENT_TYPE, {"i": i})["seq"]
                    i += 1
                except (NotConnected, Timeout, OSError) as e:
                    self._retry(client, e)
                    client = None
                    continue
                except RPCError as e:
                    if e.type != "shutting_down":
                        raise
                    self._retry(client, e)
                    client = None
                    continue
                next_at += self.interval
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                else:
                    next_at = time.monotonic()
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            if client is not None:
                client.close()

    def _retry(self, client: Optional[Client], _e: BaseException) -> None:
        self.retries += 1
        if client is not None:
            client.close()
        time.sleep(0.05)


@pytest.mark.journal_only
def test_every_acknowledged_event_is_processed_at_least_once(daemon_factory, tmp_path, capsys) -> None:
    events = _env_int("TW_CONSUMER_CHAOS_EVENTS", 2000)
    daemon_kills = _env_int("TW_CONSUMER_CHAOS_DAEMON_KILLS", 2)
    rate = float(_env_int("TW_CONSUMER_CHAOS_RATE", 150))
    seed = _env_int("TW_CONSUMER_CHAOS_SEED", time.time_ns() % (1 << 32))
    rng = random.Random(seed)
    data = str(tmp_path / "data")
    workdir = tmp_path / "members"
    workdir.mkdir()

    daemon = daemon_factory.start(extra=["--data-dir", data])
    path = daemon.socket_path
    members = [Member(i, path, workdir) for i in range(3)]
    publisher = Publisher(path, events, rate)
    member_kills = 0
    try:
        for m in members:
            m.start()
        with Client(path) as c:  # the group exists (and starts) before the first publish
            deadline = time.monotonic() + 30
            while True:
                rows = [r for r in c.get_consumers()["consumers"] if r["consumer"] == CONSUMER]
                if rows and rows[0]["members"] == 3:
                    break
                assert time.monotonic() < deadline, f"members did not subscribe: {rows}\n" + "".join(
                    m.stderr_tail() for m in members
                )
                time.sleep(0.05)

        kill_points = sorted(rng.sample(range(events // 8, events - events // 8), daemon_kills))
        publisher.start()
        next_member_chaos = time.monotonic() + rng.uniform(0.2, 1.2)
        restart_at: Dict[int, float] = {}
        while publisher.is_alive():
            if kill_points and len(publisher.acked) >= kill_points[0]:
                kill_points.pop(0)
                daemon.stop(signal.SIGKILL)
                time.sleep(rng.uniform(0.0, 0.3))
                daemon = daemon_factory.start(socket_path=path, extra=["--data-dir", data])
            now = time.monotonic()
            if now >= next_member_chaos:
                victim = rng.choice(members)
                if victim.running():
                    victim.kill()
                    member_kills += 1
                    restart_at[victim.index] = now + rng.uniform(0.0, 0.5)
                next_member_chaos = now + rng.uniform(0.2, 1.2)
            for index, when in list(restart_at.items()):
                if now >= when:
                    members[index].start()
                    del restart_at[index]
            time.sleep(0.02)
        publisher.join()
        assert publisher.error is None, f"publisher failed: {publisher.error!r}"
        assert not kill_points, f"the daemon was killed {daemon_kills - len(kill_points)} of {daemon_kills} times"
        for m in members:
            if not m.running():
                m.start()

        acked: Set[int] = set(publisher.acked.values())
        assert len(publisher.acked) == events

        def missing() -> Set[int]:
            seen = {seq for m in members for seq, _ in m.processed()}
            return acked - seen

        deadline = time.monotonic() + max(60.0, events / 50)
        left = missing()
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = missing()

        records = [r for m in members for r in m.processed()]
        per_seq: Dict[int, int] = {}
        for seq, _attempt in records:
            per_seq[seq] = per_seq.get(seq, 0) + 1
        duplicates = sum(n - 1 for n in per_seq.values())
        twice = sum(1 for n in per_seq.values() if n > 1)
        redelivered = sum(1 for _s, a in records if a > 1)
        with Client(path) as c:
            letters = c.get_dead_letters(consumer=CONSUMER)["dead_letters"]
        with capsys.disabled():
            print(
                f"\nconsumer chaos (seed {seed}): {events} events acknowledged ({publisher.retries} publish retries); "
                f"daemon kill -9 x{daemon_kills}, member SIGKILL x{member_kills}; "
                f"{len(records)} processed of {len(per_seq)} distinct seqs; "
                f"duplicates {duplicates} ({twice} seqs more than once, {redelivered} deliveries with attempt > 1); "
                f"missing {len(left)}; dead letters {len(letters)}"
            )
        assert not left, (
            f"acknowledged but never processed (seed {seed}): {sorted(left)[:50]}\n"
            + "".join(m.stderr_tail() for m in members)
        )
        assert letters == [], "no event should have run out of attempts (max_deliver 1000)"
        assert member_kills > 0
    finally:
        publisher.halt.set()
        for m in members:
            m.stop()
