"""`python -m tradewire` as a subprocess."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from typing import List, Optional

from support import client_env
from tradewire import Client
from tradewire.cli import KeyValues, Table, fmt_cell, fmt_duration, fmt_fixed, fmt_time, fmt_truncate


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
    assert r2.returncode == 0 and re.fullmatch(r"pong \(\d+\.\d ms\)", r2.stdout.strip()), r2.stdout
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
    assert json.loads(st.stdout)["api_level"] == 2
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


# ---------------------------------------------------------------- human output (like the Swift CLI)

#: a float printed with many decimals, e.g. 0.8464789318823952 or 4.924842894
LONG_FLOAT = re.compile(r"\d\.\d{5,}")


def check_aligned(block, right=()):
    """Every row of a table (header first) has each column where the header has it:
    left-aligned cells start at the header's start, right-aligned ones end at its end."""
    header = block[0]
    names = re.findall(r"\S+(?: \S+)*", header)  # headers may hold one space ("EVENT TYPE")
    spans, pos = [], 0
    for name in names:
        start = header.index(name, pos)
        spans.append((start, start + len(name)))
        pos = start + len(name)
    for row in block[1:]:
        for i, (start, end) in enumerate(spans):
            if i in right:
                assert len(row) >= end and row[end - 1] != " ", (header, row, names[i])
                assert len(row) == end or row[end] == " ", (header, row, names[i])
            else:
                assert len(row) > start and row[start] != " ", (header, row, names[i])
                assert start == 0 or row[start - 1] == " ", (header, row, names[i])


def blocks(text):
    """Paragraphs of lines separated by blank lines."""
    out, cur = [], []
    for line in text.splitlines():
        if line.strip():
            cur.append(line)
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def test_cli_format_helpers_round_like_the_swift_cli() -> None:
    assert fmt_duration(0.004123456789) == "4.1 ms"
    assert fmt_duration(1.912345678) == "1.91 s"
    assert fmt_duration(None) == "-"
    assert fmt_fixed(0.8464789318823952, 2) == "0.85" and fmt_fixed(2.62012345, 3) == "2.620"
    assert fmt_fixed("x", 2) == "-" and fmt_fixed(True, 2) == "-"
    assert fmt_cell(None) == "-" and fmt_cell(True) == "yes" and fmt_cell(60) == "60" and fmt_cell("s") == "s"
    assert fmt_time("2026-11-30T11:51:13.283646Z") == "11:51:13.283"
    assert fmt_truncate("x" * 70, 60) == "x" * 59 + "…" and fmt_truncate("short", 60) == "short"
    t = Table(["NAME", "N"], right=[1])
    t.append(["a", "1000"])
    t.append(["longer", "7"])
    assert t.render() == ["NAME       N", "a       1000", "longer     7"]
    kv = KeyValues()
    kv.append("pid", "1")
    kv.append("loop interval", "60 s")
    assert kv.render() == ["pid:           1", "loop interval: 60 s"]


def test_cli_status_is_an_aligned_key_value_list(socket_path: str) -> None:
    r = tw(["status"], socket_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    keys = [line.split(":", 1)[0] for line in lines]
    assert keys[:6] == ["version", "api_level", "pid", "socket", "mode", "uptime"]
    assert "loop" in keys and "last iteration" in keys
    value_col = {len(line) - len(line.split(":", 1)[1].lstrip()) for line in lines}
    assert len(value_col) == 1, f"values not aligned:\n{r.stdout}"
    fields = {k: line.split(":", 1)[1].strip() for k, line in zip(keys, lines)}
    assert fields["api_level"] == "2" and fields["socket"] == socket_path
    assert re.fullmatch(r"\d+\.\d ms|\d+\.\d\d s", fields["uptime"]), fields["uptime"]
    assert not LONG_FLOAT.search(r.stdout), r.stdout
    # --json is unchanged: the raw result, compact, with the full-precision numbers
    j = tw(["--json", "status"], socket_path)
    raw = json.loads(j.stdout)
    assert j.stdout.strip() == json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
    assert isinstance(raw["uptime_seconds"], float)


def test_cli_stats_prints_four_aligned_tables(socket_path: str) -> None:
    with Client(socket_path) as c:
        c.run_pipeline(["AAPL"], dry_run=True)  # pipeline latencies to show
    r = tw(["stats"], socket_path)
    assert r.returncode == 0, r.stderr
    bs = blocks(r.stdout)
    assert [b[0].split("  ")[0] for b in bs] == ["COUNTER", "EVENT TYPE", "PUBLISHED TYPE", "STAGE"], r.stdout
    assert re.fullmatch(r"COUNTER +VALUE", bs[0][0])
    assert re.fullmatch(r"EVENT TYPE +SUBSCRIBERS +HANDLERS", bs[1][0])
    assert re.fullmatch(r"PUBLISHED TYPE +COUNT", bs[2][0])
    assert re.fullmatch(r"STAGE +COUNT +P50 MS +P99 MS", bs[3][0])
    for b, right in zip(bs, [(1,), (1, 2), (1,), (1, 2, 3)]):
        check_aligned(b, right)
        assert len({len(line) for line in b}) == 1, b  # the last column is right-aligned
    counters = dict(re.split(r"\s{2,}", line.strip()) for line in bs[0][1:])
    assert counters["history_capacity"] == "1000" and re.fullmatch(r"\d+\.\d\d s|\d+\.\d ms", counters["uptime"])
    stages = {line.split()[0]: line.split()[1:] for line in bs[3][1:]}
    assert set(stages) >= {"data", "strategy", "quant", "risk", "execution", "audit"}
    for count, p50, p99 in stages.values():
        assert int(count) >= 1 and re.fullmatch(r"\d+\.\d{3}", p50) and re.fullmatch(r"\d+\.\d{3}", p99)
    assert not LONG_FLOAT.search(r.stdout), r.stdout
    j = json.loads(tw(["--json", "stats"], socket_path).stdout)
    assert "total_subscribers" in j and isinstance(j["uptime_seconds"], float)


def test_cli_run_prints_a_rounded_signal_table(socket_path: str) -> None:
    r = tw(["run", "AAPL", "MSFT", "GOOGL", "--dry-run"], socket_path, timeout=90)
    assert r.returncode == 0, r.stderr
    bs = blocks(r.stdout)
    head = dict(re.split(r":\s+", line, maxsplit=1) for line in bs[0])
    assert list(head) == ["iteration", "id", "duration", "symbols", "dry run"], bs[0]
    assert head["symbols"] == "AAPL, GOOGL, MSFT" and head["dry run"].startswith("yes")
    assert re.fullmatch(r"\d+\.\d ms|\d+\.\d\d s", head["duration"]), head["duration"]
    table = bs[1]
    assert re.fullmatch(r"SYMBOL +ACTION +STRATEGY +CONF +APPROVED +QTY +FILL +REASON", table[0]), table[0]
    check_aligned(table, right=(3, 5, 6))
    assert [row.split()[0] for row in table[1:]] == ["AAPL", "GOOGL", "MSFT"]
    for row in table[1:]:
        cells = row.split()
        assert cells[1] in ("BUY", "SELL", "HOLD", "-")
        assert re.fullmatch(r"[01]\.\d\d|-", cells[3]), row  # confidence: 2 decimals
        assert cells[4] in ("yes", "no", "-")
        assert re.fullmatch(r"~?\d+\.\d\d|-|failed|filled", cells[6]), row  # fill: 2 decimals
    assert any(line.startswith("audit: ") for line in r.stdout.splitlines())
    assert not LONG_FLOAT.search(r.stdout), r.stdout
    # the same iteration's JSON does carry long floats (confidences), unchanged
    j = tw(["--json", "run", "AAPL", "MSFT", "GOOGL", "--dry-run"], socket_path, timeout=90)
    res = json.loads(j.stdout)
    assert j.stdout.strip() == json.dumps(res, separators=(",", ":"), ensure_ascii=False)
    assert res["dry_run"] is True and isinstance(res["duration_seconds"], float)


def test_cli_history_table_cuts_data_unless_wide(socket_path: str, etype: str) -> None:
    long_data = {"price": 101.5, "note": "n" * 100}
    p = tw(["publish", etype, json.dumps(long_data)], socket_path)
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(rf"published seq \d+ \({re.escape(etype)}, 0 subscribers\)", p.stdout.strip()), p.stdout
    tw(["publish", etype, "7"], socket_path)
    r = tw(["history", "--type", etype], socket_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"SEQ +TIME +TYPE +SUBS +DATA", lines[0]) and len(lines) == 3, r.stdout
    check_aligned(lines, right=(0, 3))
    seq, clock, typ, subs, data = lines[1].split(None, 4)
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", clock) and typ == etype and subs == "0"
    assert len(data) == 60 and data.endswith("…") and data.startswith('{"price":101.5,')
    assert lines[2].split(None, 4)[4] == "7"
    wide = tw(["history", "--type", etype, "--wide"], socket_path).stdout.splitlines()
    assert json.loads(wide[1].split(None, 4)[4]) == long_data
    assert tw(["history", "--type", "no.such.type.here"], socket_path).stdout.strip() == "no events"
    assert r.stderr == ""


def test_cli_rpc_errors_read_like_the_swift_cli(socket_path: str) -> None:
    e = tw(["run", "bad!sym"], socket_path)
    assert e.returncode == 1
    first, *rest = e.stderr.splitlines()
    assert first.startswith("tradewire: ") and first.endswith("(-32602 invalid_params)"), e.stderr
    assert rest and rest[0].startswith("  at /symbols/0: "), e.stderr
    assert tw(["history", "--limit", "-1"], socket_path).returncode == 2
