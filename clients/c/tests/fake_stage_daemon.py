#!/usr/bin/env python3
"""A scripted fake tradewired for the C client's stage tests (python3 stdlib only).

    fake_stage_daemon.py --socket PATH --scenario NAME --out FILE [--big-bytes N]

Listens on PATH, prints "ready" on stdout, accepts ONE connection and plays
the scenario: it answers register_stage / unregister_stage / ping, sends
stage.handle calls (ids "c-N"), $/cancelRequest and other notifications, and
records every message the client sent. When the client disconnects (or a step
times out) it writes {"scenario", "received": [msg...], "sent", "error": null|str}
to FILE and exits 0 ("sent": what it sent, except an over-long line). The C test (tests/test_stage.c) checks FILE.

Scenarios:
  serve   register; event notification; calls driven by input.cmd (echo,
          fail, wait_cancel, sleep, huge); a cancel for a finished call, a
          running call and a queued call; an unknown method; an over-long
          line; params that are not an object; then the shutdown notification.
  refuse  register_stage answered with -32030 stage_conflict.
  close   register accepted, then the connection is closed.
  stop    the callback calls tw_stop_serving: expects unregister_stage, sends
          a call racing it, then one after serving stopped (wants -32601).
  risk    one risk call with five signals (for contrib/c/risk_check), then
          the shutdown notification.
"""
import argparse
import datetime
import json
import os
import socket
import sys
import time

STEP_TIMEOUT = 30.0  # generous: the client may run under valgrind


class StepError(Exception):
    pass


def rfc3339(seconds_from_now):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds_from_now)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


class Peer:
    def __init__(self, conn):
        self.conn = conn
        self.buf = b""
        self.received = []
        self.sent = []
        self.eof = False

    def send(self, *objs):
        self.sent.extend(objs)
        data = b"".join(json.dumps(o, separators=(",", ":")).encode() + b"\n" for o in objs)
        self.conn.sendall(data)

    def send_raw(self, data):
        self.conn.sendall(data)

    def recv(self, timeout=STEP_TIMEOUT):
        """The next message from the client (recorded), or None at EOF."""
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if self.eof:
                return None
            left = end - time.monotonic()
            if left <= 0:
                raise StepError("timed out waiting for a message from the client")
            self.conn.settimeout(left)
            try:
                chunk = self.conn.recv(65536)
            except socket.timeout:
                raise StepError("timed out waiting for a message from the client")
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
                if not self.buf:
                    return None
                self.buf += b"\n"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            msg = json.loads(line)
        except ValueError:
            msg = {"_unparsed": line.decode("utf-8", "replace")}
        self.received.append(msg)
        return msg

    def expect_request(self, method):
        """Waits for a request of `method` from the client, answering pings."""
        while True:
            m = self.recv()
            if m is None:
                raise StepError("client closed while waiting for %s" % method)
            if m.get("method") == method:
                return m
            if m.get("method") == "ping":
                self.send({"jsonrpc": "2.0", "id": m.get("id"), "result": {"pong": True}})

    def expect_reply(self, rid):
        """Waits for the reply to our request `rid` (answering pings)."""
        while True:
            m = self.recv()
            if m is None:
                raise StepError("client closed while waiting for the reply to %s" % rid)
            if m.get("method") == "ping":
                self.send({"jsonrpc": "2.0", "id": m.get("id"), "result": {"pong": True}})
                continue
            if "method" not in m and m.get("id") == rid:
                return m

    def wait_eof(self):
        while self.recv() is not None:
            pass


def register_ok(peer, reg="r-1"):
    m = peer.expect_request("register_stage")
    p = m.get("params") or {}
    peer.send({"jsonrpc": "2.0", "id": m["id"], "result": {
        "registration": reg, "stage": p.get("stage"), "name": p.get("name"),
        "mode": p.get("mode", "after"), "timeout_ms": p.get("timeout_ms", 5000),
        "on_failure": p.get("on_failure", "fail_closed"), "durable": p.get("durable", False),
        "members": 1}})
    return p


def signal(sid, symbol, qty, approved=True, action="BUY", risk_amount=None, reason=None):
    s = {"id": sid, "symbol": symbol, "action": action, "strategy_name": "TrendFollowing",
         "confidence": 0.8, "timestamp": "2025-01-02T15:00:00.000Z", "price": 10.0,
         "stop_loss": 9.5, "take_profit": 11.0, "reasoning": "test", "qty": qty,
         "approved": approved, "rejection_reason": reason}
    if risk_amount is not None:
        s["risk_amount"] = risk_amount
    return s


def call(cid, cmd=None, stage="risk", seconds=5.0, extra_input=None, **over):
    inp = {"signals": [signal("sig-1", "SPY", 10)]}
    if cmd:
        inp["cmd"] = cmd
    if extra_input:
        inp.update(extra_input)
    params = {"registration": "r-1", "stage": stage, "name": "c-test", "mode": "after",
              "iteration": 7, "iteration_id": "it-7", "deadline": rfc3339(seconds),
              "dry_run": True, "input": inp, "output": inp["signals"],
              "account": {"cash": 1000.0, "equity": 1000.0, "positions": {},
                          "risk_budget": {"day": "2025-01-02", "used": 0, "limit": 100}}}
    params.update(over)
    return {"jsonrpc": "2.0", "id": cid, "method": "stage.handle", "params": params}


def scenario_serve(peer, args):
    register_ok(peer)
    peer.send({"jsonrpc": "2.0", "method": "event", "params": {"subscription": "s-1", "event": {
        "seq": 1, "event_type": "x.y", "timestamp": rfc3339(0), "data": {"n": 1}, "metadata": {}}}})
    peer.send(call("c-1", "echo"))
    peer.expect_reply("c-1")
    peer.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "c-1"}})  # finished: ignored
    peer.send(call("c-2", "fail"))
    peer.expect_reply("c-2")
    peer.send({"jsonrpc": "2.0", "id": "c-3", "method": "stage.bogus", "params": {}})
    peer.expect_reply("c-3")
    # a running call: the callback pings (so we know it runs), then polls for the cancel
    peer.send(call("c-4", "wait_cancel"))
    ping = peer.expect_request("ping")
    peer.send({"jsonrpc": "2.0", "id": ping["id"], "result": {"pong": True}},
              {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "c-4"}})
    # a queued call cancelled while another runs
    peer.send(call("c-5", "sleep"), call("c-6", "echo"),
              {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "c-6"}})
    peer.expect_reply("c-5")
    peer.send(call("c-7", "echo"))
    peer.expect_reply("c-7")
    # an over-long line (the client's max is set low by the test), then a normal call
    big = call("c-8", "echo", extra_input={"pad": "x" * args.big_bytes})
    peer.send_raw(json.dumps(big, separators=(",", ":")).encode() + b"\n")
    peer.send(call("c-9", "echo"))
    peer.expect_reply("c-9")
    peer.send(call("c-10", "huge"))
    peer.expect_reply("c-10")
    peer.send({"jsonrpc": "2.0", "id": "c-11", "method": "stage.handle", "params": [1, 2]})
    peer.expect_reply("c-11")
    peer.send({"jsonrpc": "2.0", "method": "shutdown", "params": {"reason": "test over"}})
    peer.wait_eof()


def scenario_refuse(peer, args):
    m = peer.expect_request("register_stage")
    peer.send({"jsonrpc": "2.0", "id": m["id"], "error": {
        "code": -32030, "message": "stage data already has a replace group",
        "data": {"type": "stage_conflict"}}})
    peer.wait_eof()


def scenario_close(peer, args):
    register_ok(peer)


def scenario_stop(peer, args):
    register_ok(peer)
    peer.send(call("c-1", "stop"))
    peer.expect_reply("c-1")
    m = peer.expect_request("unregister_stage")
    peer.send(call("c-2", "echo"))  # arrives before the unregister is answered: still served
    peer.send({"jsonrpc": "2.0", "id": m["id"], "result": {"removed": 1}})
    peer.expect_reply("c-2")
    ping = peer.expect_request("ping")  # the test pings after tw_serve_stage returned
    peer.send(call("c-3", "echo"), {"jsonrpc": "2.0", "id": ping["id"], "result": {"pong": True}})
    peer.expect_reply("c-3")  # -32601: not serving any more
    peer.wait_eof()


def scenario_risk(peer, args):
    register_ok(peer)
    sigs = [signal("a", "AAA", 50, risk_amount=100.0),
            signal("b", "BBB", 150, risk_amount=300.0),
            signal("c", "CCC", 500, approved=False, reason="insufficient buying power"),
            signal("d", "DDD", 0, action="HOLD"),
            signal("e", "EEE", 120.5)]
    c = call("c-1", stage="risk")
    c["params"]["name"] = "c-risk-check"
    c["params"]["input"] = {"signals": sigs}
    c["params"]["output"] = sigs
    peer.send(c)
    peer.expect_reply("c-1")
    peer.send({"jsonrpc": "2.0", "method": "shutdown", "params": {"reason": "test over"}})
    peer.wait_eof()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--scenario", required=True,
                    choices=["serve", "refuse", "close", "stop", "risk"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--big-bytes", type=int, default=200000)
    args = ap.parse_args()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(args.socket)
    srv.listen(1)
    print("ready", flush=True)
    srv.settimeout(STEP_TIMEOUT)
    error = None
    peer = None
    try:
        conn, _ = srv.accept()
        peer = Peer(conn)
        globals()["scenario_" + args.scenario](peer, args)
    except (StepError, OSError) as e:
        error = "%s: %s" % (type(e).__name__, e)
    finally:
        if peer:
            peer.conn.close()
        srv.close()
        try:
            os.unlink(args.socket)
        except OSError:
            pass
    with open(args.out + ".tmp", "w") as f:
        json.dump({"scenario": args.scenario, "received": peer.received if peer else [],
                   "sent": peer.sent if peer else [], "error": error}, f)
    os.replace(args.out + ".tmp", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
