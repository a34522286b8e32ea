"""`python -m tradewire` as a subprocess."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import List, Optional

from support import client_env
from tradewire import Client


def tw(args: List[str], socket: Optional[str], input: Optional[str] = None, timeout: float = 30):
    argv = [sys.executable, "-m", "tradewire"]
    if socket is not None:
        argv += ["--socket", socket]
    return subprocess.run(argv + args, input=input, capture_output=True, text=True, env=client_env(), timeout=timeout)


def test_cli_ping(socket_path: str) -> None:
    r = tw(["--json", "ping"], socket_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"pong": True}
    r2 = tw(["ping"], socket_path)
    assert r2.returncode == 0 and r2.stdout.strip() == "pong"
    r3 = tw(["ping", "--json"], socket_path)  # global options also after the command
    assert json.loads(r3.stdout) == {"pong": True}


def test_cli_publish_and_history(socket_path: str, etype: str) -> None:
    r = tw(["--json", "publish", etype, '{"price": 101.5, "tags": ["a"]}', "--meta", "source=cli", "--meta", "n=3"],
           socket_path)
    assert r.returncode == 0, r.stderr
    pub = json.loads(r.stdout)
    assert pub["event_type"] == etype and isinstance(pub["seq"], int)

    r2 = tw(["--json", "publish", etype, "-"], socket_path, input='"from stdin"')
    assert r2.returncode == 0, r2.stderr
    pub2 = json.loads(r2.stdout)

    h = tw(["--json", "history", "--type", etype], socket_path)
    assert h.returncode == 0, h.stderr
    events = json.loads(h.stdout)["events"]
    assert [e["seq"] for e in events] == [pub["seq"], pub2["seq"]]
    assert events[0]["data"] == {"price": 101.5, "tags": ["a"]}
    assert events[0]["metadata"]["source"] == "cli" and events[0]["metadata"]["n"] == 3
    assert events[1]["data"] == "from stdin"

    lim = tw(["--json", "history", "--type", etype, "--limit", "1"], socket_path)
    assert [e["seq"] for e in json.loads(lim.stdout)["events"]] == [pub2["seq"]]
    since = tw(["--json", "history", "--type", etype, "--since", str(pub["seq"])], socket_path)
    assert [e["seq"] for e in json.loads(since.stdout)["events"]] == [pub2["seq"]]
    human = tw(["history", "--type", etype], socket_path)
    assert human.returncode == 0 and etype in human.stdout


def test_cli_subscribe_json_lines(socket_path: str, etype: str) -> None:
    with Client(socket_path) as c:
        start = c.get_event_history(limit=1, include_data=False)["newest_seq"] or 0
    # --since makes it race-free: whatever is published before the CLI has subscribed is replayed
    argv = [sys.executable, "-m", "tradewire", "--socket", socket_path, "--json", "subscribe", etype,
            "--since", str(start), "--count", "3"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=client_env())
    try:
        with Client(socket_path) as c:
            seqs = [c.publish(etype, {"i": i})["seq"] for i in range(3)]
        out, err = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    objs = [json.loads(line) for line in lines]
    assert [o["seq"] for o in objs] == seqs
    assert [o["data"] for o in objs] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert all(line == json.dumps(o, separators=(",", ":"), ensure_ascii=False) for line, o in zip(lines, objs))


def test_cli_subscribe_since(socket_path: str, etype: str) -> None:
    with Client(socket_path) as c:
        s1 = c.publish(etype, 1)["seq"]
        c.publish(etype, 2)
    r = tw(["--json", "subscribe", etype, "--since", str(s1 - 1), "--count", "2"], socket_path)
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["data"] for x in r.stdout.splitlines()] == [1, 2]


def test_cli_run_status_stats_call_discover(socket_path: str) -> None:
    r = tw(["--json", "run", "AAPL", "MSFT", "--dry-run", "--timeout", "60"], socket_path)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["symbols"] == ["AAPL", "MSFT"] and res["dry_run"] is True
    assert tw(["run", "AAPL", "--dry-run"], socket_path).returncode == 0
    st = tw(["--json", "status"], socket_path)
    assert json.loads(st.stdout)["api_level"] == 1
    assert tw(["status"], socket_path).returncode == 0
    assert "total_subscribers" in json.loads(tw(["--json", "stats"], socket_path).stdout)
    c = tw(["--json", "call", "get_event_history", '{"limit": 1, "include_data": false}'], socket_path)
    assert c.returncode == 0 and "events" in json.loads(c.stdout)
    d = tw(["--json", "discover"], socket_path)
    assert d.returncode == 0 and "methods" in json.loads(d.stdout)


def test_cli_exit_codes(socket_path: str, tmp_path) -> None:
    missing = str(tmp_path / "missing.sock")
    r = tw(["ping"], missing)
    assert r.returncode == 3
    assert missing in r.stderr and "make run" in r.stderr

    e = tw(["call", "no_such_method"], socket_path)
    assert e.returncode == 1 and "-32601" in e.stderr and e.stdout == ""
    bad = tw(["run", "bad sym!"], socket_path)
    assert bad.returncode == 1 and "-32602" in bad.stderr

    assert tw(["publish", "x", "{not json"], socket_path).returncode == 2
    assert tw(["no-such-command"], socket_path).returncode == 2
    assert tw([], socket_path).returncode == 2


def test_cli_loop_and_shutdown(daemon_factory) -> None:
    d = daemon_factory.start()
    r = tw(["--json", "loop", "start", "--interval", "30"], d.socket_path)
    assert r.returncode == 0, r.stderr
    started = json.loads(r.stdout)
    assert started["running"] is True and started["interval_seconds"] == 30
    s = tw(["--json", "loop", "stop"], d.socket_path)
    assert s.returncode == 0 and json.loads(s.stdout)["running"] is False
    sd = tw(["--json", "shutdown"], d.socket_path)
    assert sd.returncode == 0 and json.loads(sd.stdout) == {"ok": True}
    assert d.proc.wait(15) == 0
    t0 = time.monotonic()
    assert tw(["ping"], d.socket_path).returncode == 3
    assert time.monotonic() - t0 < 20
