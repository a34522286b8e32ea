"""Several daemons on one PostgreSQL (PROTOCOL §13), as processes.

Each test starts its own PostgreSQL (``scripts/pg-server.sh``: a private data dir,
socket directory and port; stopped at the end, and by the script's watchdog should
pytest die) and real ``tradewired --cluster`` nodes.
"""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
import uuid
from typing import Dict, Iterator, List

import pytest
from requests_sse import EventSource

from support import DaemonFactory, Postgres, wait_until
from tradewire import Client, StageWorker
from tradewire.errors import RPCError, TradewireError

pytestmark = pytest.mark.journal_only  # the nodes choose their storage (the cluster's)

@pytest.fixture
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    pg.start()
    try:
        yield pg
    finally:
        pg.destroy()


def node(factory: DaemonFactory, pg: Postgres, name: str, socket_path: str = None):
    return factory.start(socket_path=socket_path, extra=["--ephemeral", "--cluster", pg.conninfo, "--node-id", name])


def status(sock: str) -> Dict:
    with Client(sock, timeout=10) as c:
        return c.call("get_status")["cluster"]


def test_three_nodes_publishing_see_one_gapless_order(daemon_factory: DaemonFactory, postgres: Postgres) -> None:
    nodes = [node(daemon_factory, postgres, f"n{i}") for i in range(3)]
    per_node = 120
    total = 3 * per_node
    received: List[List[Dict]] = [[] for _ in nodes]
    subscribed = threading.Barrier(len(nodes) + 1)

    def listen(i: int) -> None:
        with Client(nodes[i].socket_path, timeout=30) as c:
            sub = c.subscribe("cl.*")
            subscribed.wait()
            for event in sub:
                received[i].append(event)
                if len(received[i]) == total:
                    return

    listeners = [threading.Thread(target=listen, args=(i,), daemon=True) for i in range(len(nodes))]
    for t in listeners:
        t.start()
    subscribed.wait(timeout=30)
    acks: List[List[int]] = [[] for _ in nodes]

    def publish(i: int) -> None:
        with Client(nodes[i].socket_path, timeout=30) as c:
            for n in range(per_node):
                acks[i].append(c.publish(f"cl.n{i}", {"node": i, "n": n})["seq"])

    publishers = [threading.Thread(target=publish, args=(i,)) for i in range(len(nodes))]
    for t in publishers:
        t.start()
    for t in publishers:
        t.join(60)
    for t in listeners:
        t.join(60)
    orders = [[e["seq"] for e in r] for r in received]
    for i, order in enumerate(orders):
        assert order == list(range(1, total + 1)), f"node n{i} delivered {order[:20]}…"
    types = [[(e["seq"], e["event_type"], e["data"]["n"]) for e in r] for r in received]
    assert types[0] == types[1] == types[2], "every node delivers the same events in the same order"
    for i in range(len(nodes)):
        mine = [e["data"]["n"] for e in received[0] if e["data"]["node"] == i]
        assert mine == list(range(per_node)), f"publisher n{i}'s order"
        assert acks[i] == sorted(acks[i]) and len(set(acks[i])) == per_node
    assert postgres.sql("SELECT count(*) || ' ' || max(seq) FROM tw_events") == f"{total} {total}"
    with Client(nodes[1].socket_path) as c:
        history = c.call("get_event_history", {"limit": 5})["events"]
    assert all(h["node"] in ("n0", "n1", "n2") for h in history)


def test_a_node_killed_mid_batch_leaves_nothing_partial_or_doubled(
    daemon_factory: DaemonFactory, postgres: Postgres
) -> None:
    victim = node(daemon_factory, postgres, "victim")
    other = node(daemon_factory, postgres, "other")
    acked: List[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def hammer(k: int) -> None:
        try:
            with Client(victim.socket_path, timeout=10) as c:
                while not stop.is_set():
                    token = f"{k}-{uuid.uuid4().hex[:12]}"
                    c.publish("kill.test", {"token": token})
                    with lock:
                        acked.append(token)
        except Exception:
            return  # the daemon died under us

    threads = [threading.Thread(target=hammer, args=(k,), daemon=True) for k in range(6)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 200, timeout=30, what="200 acknowledged publishes")
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(10)
    stop.set()
    for t in threads:
        t.join(15)
    # Restarted under the same id (it waits out the dead incarnation's heartbeat window).
    restarted = node(daemon_factory, postgres, "victim", socket_path=daemon_factory.socket_path())
    with Client(restarted.socket_path, timeout=20) as c:
        c.publish("kill.test", {"token": "after-restart"})
    count, newest, distinct = postgres.sql(
        "SELECT count(*) || ' ' || max(seq) || ' ' || count(DISTINCT data::json->>'token') FROM tw_events"
    ).split()
    assert count == newest, "seq is exactly 1..N: nothing partial left a hole"
    assert count == distinct, "no publish stored twice"
    stored = set(postgres.sql("SELECT data::json->>'token' FROM tw_events").split())
    missing = [t for t in acked if t not in stored]
    assert not missing, f"{len(missing)} acknowledged publishes are not in PostgreSQL"
    assert "after-restart" in stored
    wait_until(lambda: status(other.socket_path)["lag_events"] == 0, timeout=10, what="the other node caught up")


def test_the_leader_crashes_and_another_takes_over_with_a_new_epoch(
    daemon_factory: DaemonFactory, postgres: Postgres
) -> None:
    nodes = {name: node(daemon_factory, postgres, name) for name in ("a", "b")}
    first = wait_until(lambda: status(nodes["a"].socket_path)["leader"], timeout=15, what="a leader")
    epoch = status(nodes["a"].socket_path)["epoch"]
    survivor = "b" if first == "a" else "a"
    with Client(nodes[survivor].socket_path, timeout=30) as c:
        # A follower neither runs the loop nor trades itself: its non-dry run goes to the leader.
        with pytest.raises(RPCError) as refused:
            c.call("start_loop", {})
        assert refused.value.code == -32003
        assert c.call("run_pipeline", {"symbols": ["AAPL"]})["dry_run"] is False
        assert c.call("run_pipeline", {"symbols": ["AAPL"], "dry_run": True})["dry_run"] is True
    with Client(nodes[first].socket_path, timeout=30) as c:
        assert c.call("run_pipeline", {"symbols": ["AAPL"]})["dry_run"] is False
    # The leader's iteration appended fenced by its epoch; the dry run's events carry none.
    assert int(postgres.sql(f"SELECT count(*) FROM tw_events WHERE epoch = {epoch} AND node_id = '{first}'")) > 0
    assert postgres.sql(f"SELECT count(*) FROM tw_events WHERE epoch IS NOT NULL AND node_id = '{survivor}'") == "0"
    crashed_at = time.monotonic()
    nodes[first].proc.send_signal(signal.SIGKILL)
    nodes[first].proc.wait(10)
    wait_until(lambda: status(nodes[survivor].socket_path)["leader"] == survivor, timeout=12, what="a new leader")
    took = time.monotonic() - crashed_at
    assert took < 10, f"failover after a crash took {took:.1f} s"
    assert status(nodes[survivor].socket_path)["epoch"] == epoch + 1
    # A clean stop hands over at once.
    third = node(daemon_factory, postgres, "c")
    wait_until(lambda: status(third.socket_path)["leader"] == survivor, timeout=10, what="c sees the leader")
    stopped_at = time.monotonic()
    nodes[survivor].stop()
    wait_until(lambda: status(third.socket_path)["leader"] == "c", timeout=5, what="c leads")
    assert time.monotonic() - stopped_at < 1.5 + 1  # 1 s by the protocol, plus the daemon's own stop


def test_a_followers_run_pipeline_is_handed_to_the_leader_and_answered_there(
    daemon_factory: DaemonFactory, postgres: Postgres
) -> None:
    a = node(daemon_factory, postgres, "run-a")
    wait_until(lambda: status(a.socket_path)["leader"] == "run-a", timeout=15, what="a leads")
    epoch = status(a.socket_path)["epoch"]
    b = node(daemon_factory, postgres, "run-b")
    wait_until(lambda: status(b.socket_path)["leader"] == "run-a", timeout=10, what="b follows a")
    with Client(b.socket_path, timeout=60) as c:
        result = c.call("run_pipeline", {"symbols": ["aapl", "MSFT"], "include_market_data": True})
        # The leader's answer, whole: its iteration, the params as sent (market data in full).
        assert result["dry_run"] is False
        assert result["symbols"] == ["AAPL", "MSFT"]
        assert isinstance(result["market_data"]["AAPL"]["bars"], list)
        iteration_id = result["iteration_id"]
        # Several at once, each answered with its own iteration.
        ids = set()
        lock = threading.Lock()

        def run(symbol: str) -> None:
            with Client(b.socket_path, timeout=60) as own:
                got = own.call("run_pipeline", {"symbols": [symbol]})
                assert got["symbols"] == [symbol]
                with lock:
                    ids.add(got["iteration_id"])

        threads = [threading.Thread(target=run, args=(s,)) for s in ("AAPL", "MSFT", "GOOGL", "AMZN")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        assert len(ids) == 4 and iteration_id not in ids
        # Bad params are refused where they are sent, before anything is handed over.
        with pytest.raises(RPCError) as bad:
            c.call("run_pipeline", {"symbols": ["AAPL"], "timeout_ms": 0})
        assert bad.value.code == -32602
        # A deadline that runs out travels back as the leader's (or the hand-over's) timeout.
        with pytest.raises(RPCError) as late:
            c.call("run_pipeline", {"symbols": ["AAPL"], "timeout_ms": 1})
        assert late.value.code == -32011 and late.value.data["type"] == "pipeline_timeout"
        assert c.call("get_stats")["pipeline"]["runs"] == 0  # b ran nothing itself
    # It ran on the leader, fenced with the leader's epoch; nothing is left in tw_calls.
    where = f"metadata LIKE '%{iteration_id}%'"
    assert postgres.sql(f"SELECT string_agg(DISTINCT node_id || ':' || epoch, ',') FROM tw_events WHERE {where}") \
        == f"run-a:{epoch}"
    with Client(a.socket_path, timeout=30) as c:
        assert c.call("get_stats")["pipeline"]["runs"] >= 5
    wait_until(lambda: postgres.sql("SELECT count(*) FROM tw_calls") == "0", timeout=10, what="tw_calls emptied")

    # The leader dies while it runs a handed-over iteration (held in a risk group whose only
    # member never answers): the next leader aborts the iteration and answers the caller.
    stuck = Client(a.socket_path, timeout=30)
    stuck.call("register_stage", {"stage": "risk", "name": "silent", "timeout_ms": 60000})
    outcome: Dict = {}

    def run_held() -> None:
        with Client(b.socket_path, timeout=90) as own:
            try:
                outcome["result"] = own.call("run_pipeline", {"symbols": ["AAPL"], "timeout_ms": 60000})
            except RPCError as error:
                outcome["error"] = error

    caller = threading.Thread(target=run_held)
    caller.start()
    wait_until(lambda: postgres.sql("SELECT count(*) FROM tw_calls WHERE claimed_by = 'run-a'") == "1", timeout=10,
               what="a took the call")
    time.sleep(0.5)  # into the risk stage
    killed_at = time.monotonic()
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    caller.join(60)
    stuck.close()
    assert "error" in outcome, outcome
    assert outcome["error"].code == -32003 and "leader was lost" in outcome["error"].message
    assert time.monotonic() - killed_at < 15
    with Client(b.socket_path, timeout=30) as c:
        aborted = c.call("get_event_history", {"event_type": "iteration_aborted"})["events"]
        assert aborted and aborted[-1]["data"]["reason"]
        # The call is answered, never run again: b, leading now, ran nothing of it.
        assert c.call("get_stats")["pipeline"]["runs"] == 0


def test_stage_groups_span_the_cluster(daemon_factory: DaemonFactory, postgres: Postgres) -> None:
    """A member connected to a follower serves the leader's calls, through the database."""
    a = node(daemon_factory, postgres, "st-a")
    wait_until(lambda: status(a.socket_path)["leader"] == "st-a", timeout=15, what="a leads")
    b = node(daemon_factory, postgres, "st-b")
    wait_until(lambda: status(b.socket_path)["leader"] == "st-a", timeout=10, what="b follows a")
    scenario = {"symbols": ["GOOGL"], "strategy": "TrendFollowing", "dry_run": True}

    def risk_group(sock: str):
        with Client(sock, timeout=10) as c:
            return next((g for g in c.call("get_status")["stages"]["risk"] if g["name"] == "veto-remote"), None)

    with Client(a.socket_path, timeout=60) as c:
        base = c.call("run_pipeline", scenario)
        assert any(s["action"] == "BUY" for s in base["approved_signals"]), base["rejected_signals"]
    calls: List[Dict] = []
    worker = StageWorker(b.socket_path)

    @worker.stage("risk", name="veto-remote", timeout_ms=3000)
    def veto(call):
        calls.append({"iteration_id": call.iteration_id, "account": call.account, "input": call.input})
        return [dict(s, approved=False, rejection_reason="remote veto") if s.get("approved") else s
                for s in call.output]

    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        # The leader counts the follower's member, and calls it.
        group = wait_until(lambda: risk_group(a.socket_path), timeout=10, what="a sees b's group")
        assert group["members"] == 1 and group["on_failure"] == "fail_closed"
        with Client(a.socket_path, timeout=60) as c:
            result = c.call("run_pipeline", scenario)
        assert [s for s in result["approved_signals"] if s["action"] != "HOLD"] == []
        vetoed = [s for s in result["rejected_signals"] if s["action"] == "BUY"]
        assert vetoed and vetoed[0]["rejection_reason"] == "remote veto"
        assert [(h["stage"], h["name"], h["outcome"]) for h in result["handlers"]] == [("risk", "veto-remote", "ok")]
        assert calls and calls[-1]["iteration_id"] == result["iteration_id"]
        assert {"cash", "equity", "positions", "risk_budget"} <= set(calls[-1]["account"])
        with Client(a.socket_path, timeout=10) as c:
            assert risk_group(a.socket_path)["calls"] == 1
        assert postgres.sql("SELECT count(*) FROM tw_calls WHERE kind = 'stage' AND reply IS NULL") == "0"
    finally:
        worker.stop()
        thread.join(10)
    # The member gone, the group goes from the leader's view, and the leader trades as before.
    wait_until(lambda: risk_group(a.socket_path) is None, timeout=10, what="b's group leaves a's view")
    with Client(a.socket_path, timeout=60) as c:
        again = c.call("run_pipeline", scenario)
        assert any(s["action"] == "BUY" for s in again["approved_signals"]) and again["handlers"] == []
    # A node that dies with a member: the leader's risk call fails closed, it never hangs.
    worker = StageWorker(b.socket_path)
    worker.stage("risk", name="veto-remote", timeout_ms=1500)(lambda call: call.output)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    wait_until(lambda: risk_group(a.socket_path), timeout=10, what="a sees b's group again")
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(10)
    with Client(a.socket_path, timeout=60) as c:
        started = time.monotonic()
        failed = c.call("run_pipeline", scenario)
        assert time.monotonic() - started < 10
    assert [s for s in failed["approved_signals"] if s["action"] != "HOLD"] == []
    assert any("veto-remote" in (s["rejection_reason"] or "") for s in failed["rejected_signals"])
    assert [h["outcome"] for h in failed["handlers"]] in (["timeout"], ["disconnected"])
    thread.join(10)


def test_publishes_fail_cleanly_while_the_database_is_down_and_resume(
    daemon_factory: DaemonFactory, postgres: Postgres
) -> None:
    n = node(daemon_factory, postgres, "solo")
    with Client(n.socket_path, timeout=30) as c, Client(n.socket_path, timeout=30) as member:
        consumer = member.subscribe("db.test", consumer="db-watch", ack_wait_ms=60000)
        assert c.publish("db.test", {"i": 1})["seq"] == 1
        assert consumer.get(timeout=10)["seq"] == 1
        assert member.call("ack", {"consumer": "db-watch", "seq": 1})["acked"] == 1
        postgres.stop()
        started = time.monotonic()
        with pytest.raises(RPCError) as unavailable:
            c.publish("db.test", {"i": 2})
        assert unavailable.value.code == -32003
        assert unavailable.value.type == "cluster_unavailable"
        assert time.monotonic() - started < 15
        assert [e["seq"] for e in c.call("get_event_history", {})["events"]] == [1], "history stays readable"
        with pytest.raises(RPCError) as consumers_away:
            c.call("get_consumers")
        assert consumers_away.value.code == -32003
        postgres.start()
        seq = wait_until(lambda: _try_publish(c), timeout=30, what="publishing again")
        assert seq >= 2
        # The consumer's deliveries resume with the database (what the failed publish
        # left, if it committed, and the new one).
        resumed = [consumer.get(timeout=10)["seq"] for _ in range(seq - 1)]
        assert resumed == list(range(2, seq + 1))
    assert postgres.sql("SELECT count(*) FROM tw_events WHERE data::json->>'i' = '2'") in ("0", "1")


def _try_publish(c: Client):
    try:
        return c.publish("db.test", {"i": 3})["seq"]
    except RPCError:
        return None


def test_operators_see_the_cluster_in_the_cli_and_in_metrics(
    daemon_factory: DaemonFactory, postgres: Postgres, tradewired_bin
) -> None:
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    a = daemon_factory.start(extra=["--ephemeral", "--cluster", postgres.conninfo, "--node-id", "ops-a"], http=True)
    b = node(daemon_factory, postgres, "ops-b")
    wait_until(lambda: len(status(a.socket_path)["nodes"]) == 2 and status(a.socket_path)["leader"],
               timeout=15, what="both nodes seen, a leader elected")
    cli = str(tradewired_bin.parent / "tradewire")
    human = subprocess.run([cli, "--socket", b.socket_path, "cluster"], capture_output=True, text=True, timeout=30)
    assert human.returncode == 0, human.stderr
    assert "ops-a" in human.stdout and "ops-b" in human.stdout and "epoch" in human.stdout
    raw = subprocess.run([cli, "--socket", b.socket_path, "cluster", "--json"], capture_output=True, text=True,
                         timeout=30)
    import json
    cluster = json.loads(raw.stdout)
    assert cluster["node_id"] == "ops-b" and cluster["state"] == "connected"
    assert {n["node_id"] for n in cluster["nodes"]} == {"ops-a", "ops-b"}

    r = requests.get(a.http_url() + "/metrics", timeout=10)
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    value = lambda name: families[name].samples[0].value  # noqa: E731
    assert value("tradewire_cluster_connected") == 1
    assert value("tradewire_cluster_nodes") == 2
    assert value("tradewire_cluster_epoch") >= 1
    assert value("tradewire_cluster_leader") == (1 if cluster["leader"] == "ops-a" else 0)
    assert value("tradewire_cluster_lag_events") == 0

    # Outside a cluster the command says so (exit 1).
    solo = daemon_factory.start(extra=["--ephemeral"])
    outside = subprocess.run([cli, "--socket", solo.socket_path, "cluster"], capture_output=True, text=True, timeout=30)
    assert outside.returncode == 1 and "not in a cluster" in outside.stderr


class Proxy:
    """A TCP proxy between a node and PostgreSQL that can pass, slow, blackhole (stop
    forwarding, sockets left open) or half-open (drop the upstream side silently) the link."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.mode = "pass"
        self.delay = 0.0
        self.pairs: List[tuple] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            self.pairs.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self.closed:
                data = source.recv(65536)
                if not data:
                    break
                while self.mode in ("blackhole", "half-open") and not self.closed:
                    time.sleep(0.05)  # held: nothing moves, nothing is closed
                if self.delay:
                    time.sleep(self.delay)
                sink.sendall(data)
        except OSError:
            pass

    def half_open(self) -> None:
        """The database side goes away without the node hearing of it."""
        self.mode = "half-open"
        for _, server in self.pairs:
            try:
                server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        for a, b in self.pairs:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass


@pytest.mark.parametrize("failure", ["blackhole", "half-open"])
def test_a_leader_cut_off_from_the_database_steps_down_and_comes_back_a_follower(
    daemon_factory: DaemonFactory, postgres: Postgres, failure: str
) -> None:
    proxy = Proxy(postgres.port)
    try:
        via_proxy = f"host=127.0.0.1 port={proxy.port} user=postgres dbname=postgres"
        a = daemon_factory.start(extra=["--ephemeral", "--cluster", via_proxy, "--node-id", "cut"])
        wait_until(lambda: status(a.socket_path)["leader"] == "cut", timeout=15, what="the proxied node leads")
        b = node(daemon_factory, postgres, "direct")
        wait_until(lambda: status(b.socket_path)["leader"] == "cut", timeout=10, what="the other node sees the leader")
        epoch = status(b.socket_path)["epoch"]
        # A slow link (150 ms each way per chunk) is not a failure: the leader keeps its lease.
        proxy.delay = 0.15
        time.sleep(5)
        assert status(a.socket_path)["leader"] == "cut" and status(b.socket_path)["epoch"] == epoch
        proxy.delay = 0.0
        cut_at = time.monotonic()
        if failure == "blackhole":
            proxy.mode = "blackhole"
        else:
            proxy.half_open()
        # The cut-off leader steps down on its own clock, before its lease can expire…
        wait_until(lambda: status(a.socket_path)["leader"] != "cut", timeout=8, what="the cut-off leader steps down")
        stepped_down = time.monotonic() - cut_at
        # …and the other node takes over with the next epoch within the bound.
        wait_until(lambda: status(b.socket_path)["leader"] == "direct", timeout=12, what="the other node leads")
        assert time.monotonic() - cut_at < 10
        assert status(b.socket_path)["epoch"] == epoch + 1
        assert stepped_down < 6, f"stepped down after {stepped_down:.1f} s"
        with Client(a.socket_path, timeout=30) as c:
            with pytest.raises(RPCError) as refused:
                c.call("run_pipeline", {"symbols": ["AAPL"]})
            assert refused.value.code == -32003
            with pytest.raises(RPCError) as unavailable:
                c.publish("cut.test", {"during": True})
            assert unavailable.value.code == -32003
        # Healed: it follows the new leader and delivers what it missed.
        proxy.mode = "pass"
        with Client(b.socket_path) as c:
            seq = c.publish("cut.after", {"healed": True})["seq"]
        wait_until(lambda: status(a.socket_path)["state"] == "connected" and status(a.socket_path)["leader"] == "direct",
                   timeout=20, what="the healed node follows")
        with Client(a.socket_path, timeout=20) as c:
            wait_until(lambda: any(e["seq"] == seq for e in c.call("get_event_history", {})["events"]), timeout=20,
                       what="the healed node delivered what it missed")
        assert status(a.socket_path)["epoch"] == epoch + 1
    finally:
        proxy.close()


def test_the_new_leader_takes_over_the_book_from_the_shared_journal(
    daemon_factory: DaemonFactory, postgres: Postgres
) -> None:
    a = node(daemon_factory, postgres, "book-a")
    wait_until(lambda: status(a.socket_path)["leader"] == "book-a", timeout=15, what="a leads")
    b = node(daemon_factory, postgres, "book-b")
    buy = [{"id": "buy", "symbol": "AAPL", "action": "BUY", "strategy_name": "manual", "confidence": 1}]
    with Client(a.socket_path, timeout=30) as c:
        # Elected is not yet trading: the new leader first restores its book. A get_portfolio
        # on it is answered once it trades (it waits; a trade would be refused meanwhile).
        c.call("get_portfolio")
        assert c.publish("validated_ready", buy)["executed"] == 1
        before = c.call("get_portfolio")
    def book(p: Dict) -> Dict:
        kept = lambda pos: {k: v for k, v in pos.items() if not any(w in k for w in ("price", "value", "pnl", "mark"))}  # noqa: E731
        return {"cash": p["cash"], "orders": p["orders"], "positions": [kept(pos) for pos in p["positions"]]}

    with Client(b.socket_path, timeout=30) as c:
        # The book is the leader's, whichever node is asked.
        assert book(c.call("get_portfolio")) == book(before)
        # The kill switch pressed on a follower is the leader's.
        assert c.call("set_trading_state", {"state": "halted", "reason": "pytest halt"})["state"] == "halted"
        with Client(a.socket_path, timeout=30) as leader:
            assert leader.call("get_status")["trading_state"]["state"] == "halted"
            refused = leader.publish("validated_ready", [dict(buy[0], id="halted-buy")])
            assert refused["executed"] == 0
            assert leader.call("set_trading_state", {"state": "active", "reason": "pytest resume"})["previous"] == \
                "halted"
        # A follower neither trades nor starts iterations.
        with pytest.raises(RPCError) as refused:
            c.publish("validated_ready", buy)
        assert refused.value.code == -32003
        # Its history is the cluster's: a's trade from before b started, with its node.
        history = c.call("get_event_history", {"event_type": "*_ready"})
        assert [(e["event_type"], e["node"]) for e in history["events"]][:2] == [
            ("validated_ready", "book-a"), ("approved_ready", "book-a")]
        assert history["oldest_seq"] == 1 and history["newest_seq"] >= history["events"][-1]["seq"]
        last = c.call("get_event_history", {"limit": 1, "include_data": False})["events"]
        assert len(last) == 1 and "data" not in last[0] and last[0]["node"] == "book-a"
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    wait_until(lambda: status(b.socket_path)["leader"] == "book-b", timeout=12, what="b leads")

    with Client(b.socket_path, timeout=30) as c:
        after = wait_until(lambda: c.call("get_portfolio") if c.call("get_portfolio")["orders"] == 1 else None,
                           timeout=10, what="b's book restored")
        assert book(after) == book(before)
        assert after["positions"] and after["positions"][0]["symbol"] == "AAPL"
        # …and b trades on from there: a sell of what a bought.
        sell = [dict(buy[0], id="sell", action="SELL")]
        assert c.publish("validated_ready", sell)["executed"] == 1
        assert c.call("get_portfolio")["orders"] == 2


def test_the_leader_prunes_the_shared_journal_behind_a_book_checkpoint(
    daemon_factory: DaemonFactory, postgres: Postgres
) -> None:
    a = daemon_factory.start(extra=["--ephemeral", "--cluster", postgres.conninfo, "--node-id", "ret-a",
                                    "--retain-events", "40"])
    wait_until(lambda: status(a.socket_path)["leader"] == "ret-a", timeout=15, what="a leads")
    buy = [{"id": "buy", "symbol": "AAPL", "action": "BUY", "strategy_name": "manual", "confidence": 1}]
    with Client(a.socket_path, timeout=30) as c:
        # Elected is not yet trading: the new leader first restores its book. A get_portfolio
        # on it is answered once it trades (it waits; a trade would be refused meanwhile).
        c.call("get_portfolio")
        assert c.publish("validated_ready", buy)["executed"] == 1
        traded_through = c.call("get_stats")["last_seq"]
        for i in range(120):
            c.publish("noise.tick", {"i": i})
        newest = c.call("get_stats")["last_seq"]
    # Every 5 s the leader checkpoints the book and deletes what retention lets go.
    wait_until(lambda: int(postgres.sql("SELECT count(*) FROM tw_events")) <= 40, timeout=80,
               what="the shared journal pruned to 40 events")
    assert int(postgres.sql("SELECT min(seq) FROM tw_events")) == newest - 39
    checkpoint = json.loads(postgres.sql("SELECT value FROM tw_state WHERE key = 'book_checkpoint'"))
    assert traded_through < checkpoint["as_of_seq"] < newest - 39
    # The trade's events are gone; a new leader's book comes from the checkpoint.
    b = node(daemon_factory, postgres, "ret-b")
    wait_until(lambda: status(b.socket_path)["leader"] == "ret-a", timeout=10, what="b follows a")
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    wait_until(lambda: status(b.socket_path)["leader"] == "ret-b", timeout=12, what="b leads")
    with Client(b.socket_path, timeout=30) as c:
        book = wait_until(lambda: c.call("get_portfolio") if c.call("get_portfolio")["orders"] == 1 else None,
                          timeout=10, what="b's book from the checkpoint")
        assert [p["symbol"] for p in book["positions"]] == ["AAPL"]
        assert c.call("get_event_history", {"limit": 1})["oldest_seq"] == newest - 39


def test_consumers_are_the_clusters_a_dead_nodes_events_go_out_elsewhere_then_to_dead_letters(
    daemon_factory: DaemonFactory, postgres: Postgres
) -> None:
    a = node(daemon_factory, postgres, "cons-a")
    b = node(daemon_factory, postgres, "cons-b")
    name, etype = "orders.audit", "cons.order"
    options = {"consumer": name, "ack_wait_ms": 2000, "max_deliver": 3}

    # One queue group across nodes: members on a and b share the events, each goes out
    # once, and what is acknowledged stays acknowledged.
    with Client(a.socket_path, timeout=30) as ca, Client(b.socket_path, timeout=30) as cb:
        sub_a = ca.subscribe(etype, **options)
        sub_b = cb.subscribe(etype, consumer=name)  # joins with the group's options
        seqs = [ca.publish(etype, {"i": i})["seq"] for i in range(20)]
        got: Dict[int, str] = {}
        deadline = time.monotonic() + 15
        while len(got) < 20 and time.monotonic() < deadline:
            for side, sub, client in (("a", sub_a, ca), ("b", sub_b, cb)):
                event = sub.get(timeout=0.1)
                if event is not None:
                    assert event["seq"] not in got, f"seq {event['seq']} went out twice"
                    assert event.delivery == {"consumer": name, "attempt": 1}
                    got[event["seq"]] = side
                    assert client.call("ack", {"consumer": name, "seq": event["seq"]})["acked"] == 1
        assert sorted(got) == seqs
        rows = [r for r in cb.call("get_consumers")["consumers"] if r["consumer"] == name]
        assert len(rows) == 1 and rows[0]["pending"] == 0 and rows[0]["position"] == seqs[-1]
        assert rows[0]["max_deliver"] == 3
        # Each node writes its member count as it changes (within 50 ms): both members show.
        wait_until(lambda: [r for r in cb.call("get_consumers")["consumers"] if r["consumer"] == name][0]["members"]
                   == 2, timeout=5, what="members on both nodes counted")
        # A member of a acknowledging on b is not b's member: -32040.
        with Client(b.socket_path, timeout=30) as other:
            with pytest.raises(RPCError) as unknown:
                other.call("ack", {"consumer": name, "seq": seqs[0]})
            assert unknown.value.code == -32040
        sub_a.close()

        # b's member takes five and never acknowledges; then b dies.
        more = [ca.publish(etype, {"i": i})["seq"] for i in range(20, 25)]
        taken = [sub_b.get(timeout=10) for _ in more]
        assert [e["seq"] for e in taken] == more and all(e.delivery["attempt"] == 1 for e in taken)
        out_at = time.monotonic()
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(10)

    # A member on a gets them after ack_wait (not before), attempt 2, then 3; then they
    # become dead letters.
    with Client(a.socket_path, timeout=30) as c:
        sub = c.subscribe(etype, consumer=name)
        second = [sub.get(timeout=10) for _ in more]
        assert time.monotonic() - out_at >= 1.9, "redelivered before ack_wait passed"
        assert sorted(e["seq"] for e in second) == more and all(e.delivery["attempt"] == 2 for e in second)
        third = [sub.get(timeout=10) for _ in more]
        assert sorted(e["seq"] for e in third) == more and all(e.delivery["attempt"] == 3 for e in third)
        letters = wait_until(
            lambda: (lambda d: d if len(d) == 5 else None)(c.call("get_dead_letters", {"consumer": name})["dead_letters"]),
            timeout=10, what="five dead letters")
        assert [d["seq"] for d in letters] == more
        assert all(d["attempts"] == 3 and d["last_error"] == "ack_wait expired" for d in letters)
        assert [d["event"]["data"] for d in letters] == [{"i": i} for i in range(20, 25)]
        row = [r for r in c.call("get_consumers")["consumers"] if r["consumer"] == name][0]
        assert row["pending"] == 0 and row["dead_letters"] == 5
        # b's member stops counting once b's heartbeat is 6 s old.
        wait_until(lambda: [r for r in c.call("get_consumers")["consumers"] if r["consumer"] == name][0]["members"]
                   == 1, timeout=10, what="the dead node's member no longer counted")
        # A dead letter retried goes out again, attempts from 1; the others can be discarded.
        assert c.call("retry_dead_letter", {"id": letters[0]["id"]}) == {"ok": True}
        again = sub.get(timeout=10)
        assert again["seq"] == more[0] and again.delivery["attempt"] == 1
        assert c.call("ack", {"consumer": name, "seq": more[0]})["acked"] == 1
        assert c.call("discard_dead_letter", {"id": letters[1]["id"]})["removed"] == 1
        assert c.call("discard_dead_letter", {"id": letters[1]["id"]})["removed"] == 0
        with pytest.raises(RPCError) as missing:
            c.call("retry_dead_letter", {"id": letters[1]["id"]})
        assert missing.value.code == -32041
        assert len(c.call("get_dead_letters", {"consumer": name})["dead_letters"]) == 3
        # Deleting the consumer removes its claims and dead letters from the cluster.
        assert c.call("delete_consumer", {"consumer": name})["removed"] == 1
        assert postgres.sql(f"SELECT count(*) FROM tw_claims WHERE consumer = '{name}'") == "0"
        assert postgres.sql(f"SELECT count(*) FROM tw_dead_letters WHERE consumer = '{name}'") == "0"


def test_a_consumer_group_across_nodes_processes_every_event_through_a_node_crash(
    daemon_factory: DaemonFactory, postgres: Postgres
) -> None:
    """At least once across nodes: members on three nodes ack as they go; one node is
    killed -9 mid-stream and one member disconnects; every published event is still
    processed, and nothing stays pending or becomes a dead letter."""
    nodes = {n: node(daemon_factory, postgres, f"group-{n}") for n in "abc"}
    name, etype, total = "group.chaos", "group.evt", 600
    processed: Dict[str, List[int]] = {n: [] for n in nodes}
    stop = threading.Event()

    def work(n: str, quit_after: int = 0) -> None:
        try:
            with Client(nodes[n].socket_path, timeout=30) as c:
                sub = c.subscribe(etype, consumer=name, ack_wait_ms=1500, max_deliver=100, max_in_flight=64)
                while not stop.is_set():
                    event = sub.get(timeout=0.2)
                    if event is None:
                        continue
                    processed[n].append(event["seq"])
                    c.call("ack", {"consumer": name, "seq": event["seq"]})
                    if quit_after and len(processed[n]) >= quit_after:
                        return  # a member that goes away mid-stream: what it had out goes elsewhere
        except (OSError, TradewireError):
            pass  # its node died

    with Client(nodes["a"].socket_path, timeout=30) as c:
        c.subscribe(etype, consumer=name, ack_wait_ms=1500, max_deliver=100, max_in_flight=64).close()
    workers = [threading.Thread(target=work, args=("a",)), threading.Thread(target=work, args=("b", 50)),
               threading.Thread(target=work, args=("c",))]
    for w in workers:
        w.start()
    seqs: List[int] = []
    with Client(nodes["a"].socket_path, timeout=30) as c:
        for i in range(total):
            seqs.append(c.publish(etype, {"i": i})["seq"])
            if i == total // 2:
                nodes["c"].proc.send_signal(signal.SIGKILL)
                nodes["c"].proc.wait(10)
        try:
            wait_until(lambda: set(seqs) <= set(processed["a"] + processed["b"] + processed["c"]), timeout=40,
                       what="every event processed")
        finally:
            stop.set()
            for w in workers:
                w.join(10)
        done = set(processed["a"] + processed["b"] + processed["c"])
        assert set(seqs) <= done, f"lost: {sorted(set(seqs) - done)[:20]}"
        row = wait_until(lambda: (lambda r: r if r["pending"] == 0 else None)(
            [r for r in c.call("get_consumers")["consumers"] if r["consumer"] == name][0]), timeout=10,
            what="nothing pending")
        assert row["dead_letters"] == 0 and row["position"] == seqs[-1]
        assert processed["c"], "c's member took part before its node died"
    assert postgres.sql(f"SELECT count(*) FROM tw_claims WHERE consumer = '{name}'") == "0"


def test_since_seq_on_a_new_node_replays_from_the_shared_journal(
    daemon_factory: DaemonFactory, postgres: Postgres
) -> None:
    a = node(daemon_factory, postgres, "replay-a")
    with Client(a.socket_path, timeout=30) as c:
        seqs = [c.publish("replay.x" if i % 2 == 0 else "replay.y", {"i": i})["seq"] for i in range(6)]
    # b's own history starts after them; its /events stream replays from the shared journal too.
    b = daemon_factory.start(
        extra=["--ephemeral", "--cluster", postgres.conninfo, "--node-id", "replay-b", "--http", "127.0.0.1:0"])
    with EventSource(b.http_url() + f"/events?type=replay.y&since_seq={seqs[0]}", timeout=20) as source:
        streamed = []
        for message in source:
            if message.type == "message":
                streamed.append(json.loads(message.data))
            if len(streamed) == 3:
                break
    assert [(e["seq"], e["data"]) for e in streamed] == [(seqs[i], {"i": i}) for i in (1, 3, 5)]
    with Client(b.socket_path, timeout=30) as c:
        sub = c.subscribe("replay.x", since_seq=seqs[1])
        replayed = [sub.get(timeout=10) for _ in range(2)]
        assert [(e["seq"], e["data"]) for e in replayed] == [(seqs[2], {"i": 2}), (seqs[4], {"i": 4})]
        with Client(a.socket_path, timeout=30) as p:
            live = p.publish("replay.x", {"i": 6})["seq"]
        assert sub.get(timeout=10)["seq"] == live, "then live, with no gap and no duplicate"
        assert sub.get(timeout=0.5) is None


def test_a_second_live_node_with_the_same_id_exits_2(
    daemon_factory: DaemonFactory, postgres: Postgres, tradewired_bin
) -> None:
    node(daemon_factory, postgres, "twin")
    sock = daemon_factory.socket_path()
    started = time.monotonic()
    twin = subprocess.run(
        [str(tradewired_bin), "--socket", sock, "--ephemeral", "--cluster", postgres.conninfo, "--node-id", "twin"],
        capture_output=True, text=True, timeout=60)
    assert twin.returncode == 2, twin.stderr
    assert "already used by a live node" in twin.stderr
    assert time.monotonic() - started < 15
    both = subprocess.run(
        [str(tradewired_bin), "--socket", sock, "--data-dir", "/tmp/x", "--cluster", postgres.conninfo],
        capture_output=True, text=True, timeout=30)
    assert both.returncode == 2 and "not both" in both.stderr
    bad = subprocess.run([str(tradewired_bin), "--socket", sock, "--cluster", "host=x port=99999"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "port" in bad.stderr
