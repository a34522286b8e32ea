"""The read-only HTTP side (docs/PROTOCOL.md, "HTTP"): ``tradewired --http 127.0.0.1:0``.

``/metrics`` is parsed with prometheus_client's own text parser; ``/events`` is read
with requests-sse, an EventSource client that resumes with ``Last-Event-ID`` by itself.
Both come from PyPI (``make deps`` installs them); the client package stays stdlib only.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from typing import Any, Dict, List, Tuple

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from requests_sse import EventSource

from support import REPO_ROOT, Daemon, storage_mode, wait_until
from tradewire import Client, StageWorker

#: Family name (as the parser reports it: counters without ``_total``) → type and labels.
FAMILIES = {
    "tradewire_events_published": ("counter", {"type"}),
    "tradewire_events_delivered": ("counter", set()),
    "tradewire_events_dropped": ("counter", set()),
    "tradewire_publish_seconds": ("histogram", set()),
    "tradewire_stage_seconds": ("histogram", {"stage"}),
    "tradewire_stage_calls": ("counter", {"stage", "name", "outcome"}),
    "tradewire_connections": ("gauge", set()),
    "tradewire_journal_commit_seconds": ("histogram", set()),
    "tradewire_iterations": ("counter", {"outcome"}),
    "tradewire_equity": ("gauge", set()),
    "tradewire_trading_state": ("gauge", set()),
}

STAGES = {"data", "strategy", "quant", "risk", "execution", "audit"}


def scrape(d: Daemon) -> Dict[str, Any]:
    """The families of one ``/metrics`` answer, by name."""
    r = requests.get(d.http_url() + "/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def value(families: Dict[str, Any], sample: str, **labels: str) -> float:
    """The value of one sample (0 when the series does not exist yet)."""
    family = next((f for f in families.values() if any(s.name == sample for s in f.samples)), None)
    if family is None:
        return 0.0
    for s in family.samples:
        if s.name == sample and s.labels == labels:
            return s.value
    return 0.0


@pytest.fixture
def http_daemon(daemon_factory) -> Daemon:
    return daemon_factory.start(http=True)


# ---------------------------------------------------------------------------
# /metrics


def test_metrics_have_every_family_with_its_type_help_and_labels(http_daemon: Daemon) -> None:
    with Client(http_daemon.socket_path, timeout=30) as c:
        c.publish("metrics.probe", {"n": 1})
        c.run_pipeline(symbols=["AAPL"], dry_run=True)
        worker = StageWorker(http_daemon.socket_path, reconnect_delay=0.02, timeout=10.0, stop_grace=0.5)
        worker.stage("risk", name="pass-through")(lambda call: call.output)
        runner = threading.Thread(target=worker.run, daemon=True)
        runner.start()
        try:
            wait_until(lambda: c.get_status()["stages"]["risk"], what="the risk group to register")
            c.run_pipeline(symbols=["GOOGL"], strategy="TrendFollowing", dry_run=True)
        finally:
            worker.stop()
            runner.join(10)
        families = scrape(http_daemon)
    for name, (kind, labels) in FAMILIES.items():
        assert name in families, f"{name} missing from /metrics"
        family = families[name]
        assert family.type == kind, name
        assert family.documentation, f"{name} has no HELP text"
        for s in family.samples:
            extra = {"le"} if s.name.endswith("_bucket") else set()
            assert set(s.labels) == labels | extra, (name, s)
    stages = {s.labels["stage"] for s in families["tradewire_stage_seconds"].samples}
    assert stages == STAGES
    assert value(families, "tradewire_stage_calls_total", stage="risk", name="pass-through", outcome="ok") >= 1
    buckets = [s for s in families["tradewire_publish_seconds"].samples if s.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf"
    assert all(float(b.labels["le"]) < 1.5 for b in buckets[:-1]), "publish buckets are in seconds"


def test_metric_values_move_after_publishes_and_a_run(http_daemon: Daemon) -> None:
    etype = f"metrics.{uuid.uuid4().hex[:8]}"
    with Client(http_daemon.socket_path, timeout=30) as c:
        before = scrape(http_daemon)
        assert value(before, "tradewire_connections") >= 1
        assert value(before, "tradewire_trading_state") == 0
        assert value(before, "tradewire_equity") == pytest.approx(100_000.0)
        with c.subscribe(etype) as sub:
            for n in range(5):
                c.publish(etype, {"n": n})
            for _ in range(5):
                sub.get(timeout=10)
        c.run_pipeline(symbols=["AAPL", "MSFT"])
        after = scrape(http_daemon)
    assert value(after, "tradewire_events_published_total", type=etype) == 5
    assert value(after, "tradewire_events_delivered_total") >= value(before, "tradewire_events_delivered_total") + 5
    assert value(after, "tradewire_publish_seconds_count") >= value(before, "tradewire_publish_seconds_count") + 5
    assert value(after, "tradewire_publish_seconds_sum") > value(before, "tradewire_publish_seconds_sum")
    for stage in STAGES:
        assert value(after, "tradewire_stage_seconds_count", stage=stage) == value(
            before, "tradewire_stage_seconds_count", stage=stage) + 1, stage
    assert value(after, "tradewire_iterations_total", outcome="completed") == value(
        before, "tradewire_iterations_total", outcome="completed") + 1
    assert value(after, "tradewire_events_published_total", type="audit_ready") >= 1
    commits = value(after, "tradewire_journal_commit_seconds_count")
    if storage_mode() == "journal":
        assert commits > value(before, "tradewire_journal_commit_seconds_count")
    else:
        assert commits == 0, "no journal, no commits"
    assert value(after, "tradewire_equity") > 0


def test_the_trading_state_gauge_follows_set_trading_state(http_daemon: Daemon) -> None:
    with Client(http_daemon.socket_path, timeout=30) as c:
        try:
            c.set_trading_state("halted", "gauge test")
            assert value(scrape(http_daemon), "tradewire_trading_state") == 2
            c.set_trading_state("reducing", "gauge test")
            assert value(scrape(http_daemon), "tradewire_trading_state") == 1
        finally:
            c.set_trading_state("active", "gauge test over")
        assert value(scrape(http_daemon), "tradewire_trading_state") == 0


def test_consumer_gauges_follow_get_consumers(http_daemon: Daemon) -> None:
    name = f"gauges-{uuid.uuid4().hex[:8]}"
    etype = f"gauge.{uuid.uuid4().hex[:8]}"
    with Client(http_daemon.socket_path, timeout=30) as c:
        with c.subscribe(etype, consumer=name, max_in_flight=10) as sub:
            for n in range(3):
                c.publish(etype, {"n": n})
            for _ in range(3):
                sub.get(timeout=10)
            families = scrape(http_daemon)
            for metric in ("tradewire_consumer_pending", "tradewire_consumer_lag", "tradewire_consumer_dead_letters"):
                assert families[metric].type == "gauge" and families[metric].documentation
            assert value(families, "tradewire_consumer_pending", consumer=name) == 3
            assert value(families, "tradewire_consumer_dead_letters", consumer=name) == 0
        assert c.delete_consumer(name)["removed"] == 1
    family = scrape(http_daemon).get("tradewire_consumer_pending")
    names = {s.labels.get("consumer") for s in family.samples} if family else set()
    assert name not in names, "a deleted consumer's series go with it"


def test_only_get_is_served(http_daemon: Daemon) -> None:
    url = http_daemon.http_url()
    assert requests.get(url + "/healthz", timeout=10).text == "ok\n"
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = requests.request(method, url + "/metrics", timeout=10)
        assert r.status_code == 405 and r.headers["Allow"] == "GET", method
    assert requests.get(url + "/nowhere", timeout=10).status_code == 404
    r = requests.get(url + "/events", params={"since_seq": "soon"}, timeout=10)
    assert r.status_code == 400 and r.text == 'since_seq must be an integer >= 0, got "soon"\n'


# ---------------------------------------------------------------------------
# /events


def publish(c: Client, etype: str, count: int, start: int = 0) -> List[int]:
    return [c.publish(etype, {"n": n})["seq"] for n in range(start, start + count)]


def read(source: EventSource, count: int) -> List[Tuple[int, Dict[str, Any]]]:
    """``count`` message events: (id as int, the Event JSON)."""
    got = []
    for event in source:
        if event.type != "message":
            continue
        got.append((int(event.last_event_id), json.loads(event.data)))
        if len(got) == count:
            break
    return got


def test_events_carry_the_seq_as_id_and_the_event_as_data(http_daemon: Daemon) -> None:
    etype = f"sse.{uuid.uuid4().hex[:8]}"
    with Client(http_daemon.socket_path, timeout=30) as c:
        seqs = publish(c, etype, 3)
        history = c.get_event_history(event_type=etype)["events"]
        url = f"{http_daemon.http_url()}/events?type={etype}&since_seq=0"
        with EventSource(url, timeout=20) as source:
            replayed = read(source, 3)
            live_seq = publish(c, etype, 1, start=3)[0]
            live = read(source, 1)
    assert [i for i, _ in replayed] == seqs
    for (seq, event), record in zip(replayed, history):
        assert event["seq"] == seq == record["seq"]
        assert event["event_type"] == etype
        assert event["data"] == record["data"] and event["metadata"] == record["metadata"]
        assert event["timestamp"] == record["timestamp"]
        assert set(event) == {"seq", "event_type", "timestamp", "data", "metadata"}
    assert live[0][0] == live_seq and live[0][1]["data"] == {"n": 3}


def test_a_reconnection_with_last_event_id_resumes_without_gap_or_duplicate(http_daemon: Daemon) -> None:
    etype = f"sse.{uuid.uuid4().hex[:8]}"
    with Client(http_daemon.socket_path, timeout=30) as c:
        seqs = publish(c, etype, 4)
        url = f"{http_daemon.http_url()}/events?type={etype}&since_seq=0"
        with EventSource(url, timeout=20) as source:
            first = read(source, 2)
        seqs += publish(c, etype, 3, start=4)
        # The library sends Last-Event-ID (it wins over since_seq=0 in the URL).
        with EventSource(url, timeout=20, latest_event_id=str(first[-1][0])) as source:
            rest = read(source, 5)
    got = [i for i, _ in first + rest]
    assert got == seqs, "every event once, in order"
    assert [e["data"]["n"] for _, e in first + rest] == list(range(7))


def publish_many(path: str, etype: str, count: int) -> None:
    """``count`` publishes in JSON-RPC batches of 1000 on one raw connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.settimeout(60)
        reader = s.makefile("rb")
        sent = 0
        while sent < count:
            n = min(1000, count - sent)
            batch = [{"jsonrpc": "2.0", "id": sent + i, "method": "publish",
                      "params": {"event_type": etype, "data": {"n": sent + i}}} for i in range(n)]
            s.sendall(json.dumps(batch).encode() + b"\n")
            answers = json.loads(reader.readline())
            assert len(answers) == n and all("result" in a for a in answers), answers[:3]
            sent += n


def test_a_replay_past_the_journal_limit_continues_after_the_client_reconnects(daemon_factory) -> None:
    d = daemon_factory.start(http=True, history_capacity=5)
    etype = f"bulk.{uuid.uuid4().hex[:8]}"
    total = 10_050  # more than one replay (10 000 events) holds
    publish_many(d.socket_path, etype, total)
    url = f"{d.http_url()}/events?type={etype}&since_seq=0"
    if storage_mode() == "ephemeral":
        # Only the history ring: the older seqs are reported, then the ring replays.
        with EventSource(url, timeout=20) as source:
            first = next(iter(source))
            assert first.type == "events_dropped"
            gap = json.loads(first.data)
            assert gap["count"] is None and gap["first_seq"] == 1
            assert [i for i, _ in read(source, 5)] == list(range(gap["last_seq"] + 1, gap["last_seq"] + 6))
        return
    opened: List[float] = []
    started = time.monotonic()
    with EventSource(url, timeout=30, on_open=lambda: opened.append(time.monotonic() - started)) as source:
        got = read(source, total)
    assert [e["data"]["n"] for _, e in got] == list(range(total)), "no gap, no duplicate across the reconnection"
    assert len(opened) == 2, "the stream closed after the journal's replay limit and the client came back"


def test_the_grafana_dashboard_names_only_served_metrics(http_daemon: Daemon) -> None:
    dashboard = json.loads((REPO_ROOT / "contrib" / "grafana" / "tradewire-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    named = {re.sub(r"_(bucket|total)$", "", m) for e in exprs for m in re.findall(r"tradewire_[a-z_]+", e)}
    with Client(http_daemon.socket_path, timeout=30) as c:
        c.publish("dashboard.probe")
    families = scrape(http_daemon)
    assert named - set(families) <= {"tradewire_stage_calls"}, "(stage calls appear with the first call)"
    assert set(FAMILIES) <= named, "the dashboard shows every metric of PROTOCOL §12"
