"""A scripted fake tradewired for stage-worker tests (docs/PROTOCOL.md section 9).

Standard library only.  It listens on a Unix socket, accepts stage workers,
answers their requests like the daemon would (``register_stage`` gets
registration ``r-1``, ``r-2``... counted across the peer; ``unregister_stage``,
``ping``, ``publish``, ``get_status`` get plausible answers; anything else
-32601), and lets a test script the rest: send ``stage.handle`` calls,
``$/cancelRequest``, other notifications or raw lines, drop a connection, and
read back every reply.

In a test::

    with StagePeer() as peer:
        ...start a StageWorker on peer.socket_path...
        conn = peer.accept()
        [reg] = conn.wait_registered(1)
        cid = conn.call(reg["registration"], input={"signals": []}, output=[])
        reply = conn.wait_reply(cid)

As a script, to try a worker by hand (one call per registration, each reply
printed as a JSON line)::

    python3 clients/testing/stage_peer.py /tmp/peer.sock --input '{"symbols": ["ACME"]}'
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import queue
import shutil
import socket
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional

STAGE_DEFAULT_FAILURE = {"risk": "fail_closed", "execution": "fail_closed"}


def rfc3339(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8") + b"\n"


class PeerConn:
    """One accepted worker connection."""

    def __init__(self, peer: "StagePeer", sock: socket.socket, number: int) -> None:
        self.peer = peer
        self.sock = sock
        self.number = number
        self._wlock = threading.Lock()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        #: every message received, in order
        self.messages: List[Any] = []
        #: register_stage: (params, result-or-None, error-or-None)
        self.registrations: List[Dict[str, Any]] = []
        #: the worker's replies to our calls, by id
        self.replies: Dict[Any, Dict[str, Any]] = {}
        #: the worker's own requests: (method, params)
        self.requests: List[tuple] = []
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name=f"stage-peer-conn-{number}", daemon=True)
        self._reader.start()

    # ---------------------------------------------------------------- input

    def _read_loop(self) -> None:
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        self._handle(json.loads(line))
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self.closed.set()
                self._cond.notify_all()

    def _handle(self, msg: Any) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()
        if not isinstance(msg, dict):
            return
        if "method" in msg and "id" in msg:
            method, params = msg["method"], msg.get("params")
            with self._cond:
                self.requests.append((method, params))
                self._cond.notify_all()
            result, error = self.peer._answer(self, method, params)
            reply: Dict[str, Any] = {"jsonrpc": "2.0", "id": msg["id"]}
            if error is not None:
                reply["error"] = error
            else:
                reply["result"] = result
            if method == "register_stage":
                with self._cond:
                    self.registrations.append({"params": params, "result": result, "error": error})
                    self._cond.notify_all()
            delay = self.peer.reply_delay.get(method)
            if delay:
                time.sleep(delay)
            self.send(reply)
            after = self.peer.after_register if method == "register_stage" and error is None else None
            if after is not None:
                after(self, result)
        elif "id" in msg and ("result" in msg or "error" in msg):
            with self._cond:
                self.replies[msg["id"]] = msg
                self._cond.notify_all()

    # ---------------------------------------------------------------- output

    def send(self, obj: Any) -> None:
        self.send_raw(encode(obj))

    def send_raw(self, data: bytes) -> None:
        try:
            with self._wlock:
                self.sock.sendall(data)
        except OSError:
            pass

    def call(
        self,
        registration: str,
        input: Any = None,
        output: Any = None,
        *,
        stage: str = "risk",
        name: str = "test",
        mode: str = "after",
        iteration: int = 1,
        iteration_id: str = "it-1",
        deadline_in: float = 5.0,
        dry_run: bool = False,
        account: Any = None,
        id: Optional[str] = None,
        method: str = "stage.handle",
        omit_output: bool = False,
    ) -> str:
        """Send one ``stage.handle`` request; returns its id (``c-N``)."""
        cid = id or f"c-{self.number}-{next(self._ids)}"
        params: Dict[str, Any] = {
            "registration": registration,
            "stage": stage,
            "name": name,
            "mode": mode,
            "iteration": iteration,
            "iteration_id": iteration_id,
            "deadline": rfc3339(datetime.now(timezone.utc) + timedelta(seconds=deadline_in)),
            "dry_run": dry_run,
            "input": input,
            "account": account,
        }
        if not omit_output:
            params["output"] = output
        self.send({"jsonrpc": "2.0", "id": cid, "method": method, "params": params})
        return cid

    def cancel(self, cid: str) -> None:
        self.notify("$/cancelRequest", {"id": cid})

    def notify(self, method: str, params: Any = None) -> None:
        msg: Dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def drop(self) -> None:
        """Close the connection from the daemon's side."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.closed.wait(5)

    # ---------------------------------------------------------------- waiting

    def _wait(self, pred: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"stage peer: timed out after {timeout} s waiting for {what}; "
                                         f"received {self.messages!r}")
                self._cond.wait(min(left, 0.05))

    def wait_registered(self, n: int = 1, timeout: float = 5.0) -> List[Dict[str, Any]]:
        """The first ``n`` successful register_stage results."""
        def ok() -> Optional[List[Dict[str, Any]]]:
            good = [r["result"] for r in self.registrations if r["error"] is None]
            return good[:n] if len(good) >= n else None
        return self._wait(ok, timeout, f"{n} registration(s)")

    def wait_reply(self, cid: str, timeout: float = 5.0) -> Dict[str, Any]:
        return self._wait(lambda: self.replies.get(cid), timeout, f"the reply to {cid}")

    def wait_request(self, method: str, timeout: float = 5.0) -> Any:
        """Params of the first request ``method`` the worker sent."""
        def find() -> Any:
            for m, p in self.requests:
                if m == method:
                    return (p,)
            return None
        return self._wait(find, timeout, f"a {method} request")[0]

    def wait_closed(self, timeout: float = 5.0) -> None:
        self._wait(self.closed.is_set, timeout, "the worker to close the connection")

    def has_reply(self, cid: str) -> bool:
        with self._cond:
            return cid in self.replies


class StagePeer:
    """The fake daemon.  ``socket_path`` defaults to a fresh 0700 directory under /tmp.

    ``register_error``: an error object (or ``callable(params) -> error or None``)
    to answer ``register_stage`` with.  ``answers``: ``{method: callable(params)
    -> result}`` for more methods.  ``after_register(conn, result)`` runs after
    each register_stage reply was sent.  ``reply_delay``: ``{method: seconds}``.
    """

    def __init__(self, socket_path: Optional[str] = None) -> None:
        self._dir: Optional[str] = None
        if socket_path is None:
            self._dir = tempfile.mkdtemp(prefix="twpeer-", dir="/tmp")
            os.chmod(self._dir, 0o700)
            socket_path = os.path.join(self._dir, "peer.sock")
        self.socket_path = socket_path
        self.register_error: Any = None
        self.answers: Dict[str, Callable[[Any], Any]] = {}
        self.after_register: Optional[Callable[[PeerConn, Any], None]] = None
        self.reply_delay: Dict[str, float] = {}
        self.conns: List[PeerConn] = []
        self._accepted: "queue.Queue[PeerConn]" = queue.Queue()
        self._regs = itertools.count(1)
        self._lock = threading.Lock()
        self._listener: Optional[socket.socket] = None
        self._stopped = threading.Event()

    def start(self) -> "StagePeer":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        s.listen(16)
        self._listener = s
        threading.Thread(target=self._accept_loop, name="stage-peer-accept", daemon=True).start()
        return self

    def _accept_loop(self) -> None:
        assert self._listener is not None
        n = 0
        while not self._stopped.is_set():
            try:
                c, _ = self._listener.accept()
            except OSError:
                return
            n += 1
            conn = PeerConn(self, c, n)
            with self._lock:
                self.conns.append(conn)
            self._accepted.put(conn)

    def accept(self, timeout: float = 5.0) -> PeerConn:
        """The next connection a worker made."""
        try:
            return self._accepted.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"stage peer: no worker connected within {timeout} s") from None

    def connection_count(self) -> int:
        with self._lock:
            return len(self.conns)

    def _answer(self, conn: PeerConn, method: str, params: Any) -> tuple:
        """``(result, error)`` for a worker's request."""
        if method in self.answers:
            return self.answers[method](params), None
        p = params if isinstance(params, dict) else {}
        if method == "register_stage":
            err = self.register_error(p) if callable(self.register_error) else self.register_error
            if err is not None:
                return None, err
            stage = p.get("stage")
            if stage not in ("data", "strategy", "quant", "risk", "execution") or not isinstance(p.get("name"), str):
                return None, {"code": -32602, "message": "Invalid params", "data": {"type": "invalid_params"}}
            return {
                "registration": f"r-{next(self._regs)}",
                "stage": stage,
                "name": p["name"],
                "mode": p.get("mode", "after"),
                "timeout_ms": p.get("timeout_ms", 5000),
                "on_failure": p.get("on_failure", STAGE_DEFAULT_FAILURE.get(stage, "skip")),
                "durable": bool(p.get("durable", False)),
                "members": 1,
            }, None
        if method == "unregister_stage":
            return {"removed": 1}, None
        if method == "ping":
            return {"pong": True}, None
        if method == "publish":
            return {"seq": len(conn.requests), "event_type": p.get("event_type"),
                    "timestamp": rfc3339(datetime.now(timezone.utc)), "subscribers": 0}, None
        if method == "get_status":
            return {"version": "stage-peer", "api_level": 2, "pid": os.getpid()}, None
        return None, {"code": -32601, "message": f"Method not found: {method}", "data": {"type": "method_not_found"}}

    def close(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self.conns)
        for c in conns:
            if not c.closed.is_set():
                c.drop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        elif os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def __enter__(self) -> "StagePeer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Fake tradewired: accept one stage worker, send each of its "
                                             "registrations one stage.handle call, print the replies.")
    ap.add_argument("socket", help="socket path to listen on")
    ap.add_argument("--input", default="null", help="the calls' input (JSON)")
    ap.add_argument("--output", default="null", help="the calls' output (JSON; mode after)")
    ap.add_argument("--account", default="null", help="the calls' account (JSON)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each step")
    args = ap.parse_args(argv)
    with StagePeer(args.socket) as peer:
        print(f"listening on {args.socket}", file=sys.stderr, flush=True)
        conn = peer.accept(timeout=3600)
        time.sleep(0.3)  # let every register_stage arrive
        conn.wait_registered(1, args.timeout)
        regs = [r["result"] for r in conn.registrations if r["error"] is None]
        for r in regs:
            cid = conn.call(r["registration"], json.loads(args.input), json.loads(args.output), stage=r["stage"],
                            name=r["name"], mode=r["mode"], account=json.loads(args.account),
                            omit_output=r["mode"] == "replace")
            print(json.dumps(conn.wait_reply(cid, args.timeout)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
