"""Helpers for the live-daemon tests: start/stop tradewired, wait for things."""
from __future__ import annotations

import atexit
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

import pytest

CLIENT_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = Path(__file__).resolve().parents[3]
if str(CLIENT_DIR) not in sys.path:
    sys.path.insert(0, str(CLIENT_DIR))

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

#: ``TW_TEST_STORAGE``: where every daemon a test starts keeps its events, unless the test
#: passes ``--data-dir`` or ``--ephemeral`` itself. ``journal`` (the default): a fresh data
#: dir of its own under the test's tmp dir, removed afterwards; ``ephemeral``: in memory;
#: ``cluster``: a node (``--cluster``, ``--ephemeral``) of one PostgreSQL the run starts.
STORAGE_MODES = ("journal", "ephemeral", "cluster")

_LIVE: List["Daemon"] = []


def daemon_binary() -> Path:
    env = os.environ.get("TRADEWIRED")
    if env:
        path = Path(env)
        if not path.is_absolute():
            pytest.fail(f"TRADEWIRED must be an absolute path to the tradewired binary, got {env!r}")
    else:
        path = REPO_ROOT / ".build" / "debug" / "tradewired"
    if not path.is_file() or not os.access(str(path), os.X_OK):
        pytest.fail(
            f"the tradewired daemon binary was not found at {path}. Build it first "
            f"(`swift build` from {REPO_ROOT}), or set TRADEWIRED=/absolute/path/to/tradewired. "
            "These tests run against a live daemon.",
            pytrace=False,
        )
    return path


def storage_mode() -> str:
    """``TW_TEST_STORAGE`` (``journal`` when unset or empty)."""
    mode = os.environ.get("TW_TEST_STORAGE") or "journal"
    if mode not in STORAGE_MODES:
        pytest.fail(f"TW_TEST_STORAGE must be journal, ephemeral or cluster, got {mode!r}", pytrace=False)
    return mode


def chooses_storage(args: Sequence[str]) -> bool:
    """True when daemon arguments already say where events go (``--data-dir`` or ``--ephemeral``)."""
    return any(a in ("--data-dir", "--ephemeral") or a.startswith("--data-dir=") for a in args)


def short_socket_dir() -> str:
    d = tempfile.mkdtemp(prefix="twpy-", dir="/tmp")
    os.chmod(d, 0o700)
    return d


PG_SERVER = str(REPO_ROOT / "scripts" / "pg-server.sh")


class Postgres:
    """A private PostgreSQL server (``scripts/pg-server.sh``: its own data dir, socket
    directory and port; its watchdog stops it should this process die)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="twpg-", dir="/tmp")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.conninfo = f"host={self.dir} port={self.port} user=postgres dbname=postgres"

    def start(self) -> None:
        subprocess.run([PG_SERVER, "start", self.dir, str(self.port), str(os.getpid())], check=True,
                       stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        subprocess.run([PG_SERVER, "stop", self.dir], check=False)

    def destroy(self) -> None:
        """Stops the server and removes its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def sql(self, query: str) -> str:
        out = subprocess.run(["psql", "-X", "-q", "-At", "-h", self.dir, "-p", str(self.port), "-U", "postgres",
                              "-c", query], check=True, capture_output=True, text=True)
        return out.stdout.strip()


_SHARED_POSTGRES: List[Postgres] = []


def shared_postgres() -> Postgres:
    """The run's PostgreSQL for ``TW_TEST_STORAGE=cluster`` (started on first use, stopped
    at exit)."""
    if not _SHARED_POSTGRES:
        pg = Postgres()
        pg.start()
        _SHARED_POSTGRES.append(pg)
        atexit.register(pg.destroy)
    return _SHARED_POSTGRES[0]


class Daemon:
    """One running tradewired process.

    Unless ``extra`` has ``--data-dir`` or ``--ephemeral``, ``TW_TEST_STORAGE`` picks the
    storage: ``--ephemeral``, or ``--data-dir`` a fresh directory under ``data_root`` (else
    under /tmp), ``data_dir``, which ``stop()`` removes once the process is gone."""

    def __init__(
        self, binary: Path, socket_path: str, extra: Sequence[str] = (), data_root: Optional[Path] = None
    ) -> None:
        self.binary = binary
        self.socket_path = socket_path
        assert len(socket_path.encode()) <= 100, socket_path
        self.data_dir: Optional[str] = None  # made here for TW_TEST_STORAGE=journal
        storage: List[str] = []
        if not chooses_storage(extra):
            if storage_mode() == "ephemeral":
                storage = ["--ephemeral"]
            elif storage_mode() == "cluster":
                storage = ["--ephemeral", "--cluster", shared_postgres().conninfo,
                           "--node-id", f"test-{uuid.uuid4().hex[:10]}"]
            else:
                if data_root is not None:
                    data_root.mkdir(parents=True, exist_ok=True)
                self.data_dir = tempfile.mkdtemp(prefix="twdata-", dir=str(data_root or "/tmp"))
                storage = ["--data-dir", self.data_dir]
        self.argv = [
            str(binary), "--socket", socket_path, "--seed", "42", "--log-level", "warning", *extra, *storage,
        ]
        self.proc: Optional[subprocess.Popen] = None
        self.output: List[str] = []
        self._ready = threading.Event()
        self._reader: Optional[threading.Thread] = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> "Daemon":
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=str(REPO_ROOT) if REPO_ROOT.is_dir() else None,
        )
        _LIVE.append(self)
        self._reader = threading.Thread(target=self._drain, name=f"tradewired-{self.proc.pid}-output", daemon=True)
        self._reader.start()
        want = f"listening on {self.socket_path}"
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(2)
                pytest.fail(
                    f"tradewired exited with {self.proc.returncode} before printing {want!r}.\n"
                    f"command: {' '.join(self.argv)}\noutput:\n" + "".join(self.output[-50:]),
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"tradewired did not print {want!r} within {START_TIMEOUT:.0f} s.\n"
                    f"command: {' '.join(self.argv)}\noutput:\n" + "".join(self.output[-50:]),
                    pytrace=False,
                )
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        want = f"listening on {self.socket_path}"
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            self.output.append(line)
            if len(self.output) > 2000:
                del self.output[:1000]
            if want in line:
                self._ready.set()
        self.proc.stdout.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    #: The plain line a daemon started with ``--http`` prints once it serves HTTP.
    HTTP_LINE = re.compile(r"^http listening on (\S+):(\d+)$")

    def http_url(self, timeout: float = START_TIMEOUT) -> str:
        """``http://ADDR:PORT`` from the ``http listening on ADDR:PORT`` line (``--http``)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.output):
                m = self.HTTP_LINE.match(line.strip())
                if m:
                    return f"http://{m.group(1)}:{m.group(2)}"
            if not self.running() or time.monotonic() > deadline:
                pytest.fail("no 'http listening on' line:\n" + "".join(self.output[-50:]), pytrace=False)
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> Optional[int]:
        """SIGTERM, wait up to 15 s, SIGKILL if needed; returns the exit code."""
        p = self.proc
        if p is None:
            if self.data_dir is not None:
                shutil.rmtree(self.data_dir, ignore_errors=True)
            return None
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        if self in _LIVE:
            _LIVE.remove(self)
        if self.data_dir is not None and p.poll() is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        return p.returncode


def _kill_leftovers() -> None:
    for d in list(_LIVE):
        try:
            d.stop()
        except Exception:
            if d.proc is not None and d.proc.poll() is None:
                d.proc.kill()


atexit.register(_kill_leftovers)


class DaemonFactory:
    """Starts daemons (their data dirs, for ``TW_TEST_STORAGE=journal``, go in
    ``data_root``: the test's tmp dir) and, at ``cleanup``, stops them and removes their
    socket dirs."""

    def __init__(self, binary: Path, data_root: Optional[Path] = None) -> None:
        self.binary = binary
        self.data_root = data_root
        self.daemons: List[Daemon] = []
        self.dirs: List[str] = []

    def socket_path(self) -> str:
        d = short_socket_dir()
        self.dirs.append(d)
        return os.path.join(d, "tw.sock")

    def start(
        self,
        *,
        socket_path: Optional[str] = None,
        history_capacity: Optional[int] = None,
        extra: Sequence[str] = (),
        http: bool = False,
    ) -> Daemon:
        """``http``: serve HTTP on ``127.0.0.1:0`` (:meth:`Daemon.http_url` says where)."""
        args = list(extra)
        if http:
            args += ["--http", "127.0.0.1:0"]
        if history_capacity is not None:
            args += ["--history-capacity", str(history_capacity)]
        d = Daemon(self.binary, socket_path or self.socket_path(), args, data_root=self.data_root)
        self.daemons.append(d)
        return d.start()

    def cleanup(self) -> None:
        for d in self.daemons:
            d.stop()
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)


def client_env() -> dict:
    """Environment for subprocesses that import tradewire from the checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(CLIENT_DIR) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("TRADEWIRE_SOCKET", None)
    return env


def wait_until(pred: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# An impostor: a server run as another user (nobody) that records what it got.

#: clients/testing/impostor.py, shared with the shell suite.
FAKE_SERVER = (pathlib.Path(__file__).resolve().parents[2] / "testing" / "impostor.py").read_text()


class FakeServer:
    """``FAKE_SERVER`` run with ``runuser -u nobody`` on ``<dir>/fake.sock``,
    in a fresh directory under /tmp with mode 0777 (so nobody can bind there).
    Each connection it accepted prints ``conn <bytes received>``."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="twfake-", dir="/tmp")
        os.chmod(self.dir, 0o777)
        self.socket_path = os.path.join(self.dir, "fake.sock")
        self.proc: Optional[subprocess.Popen] = None
        self.lines: List[str] = []
        self._cond = threading.Condition()

    def start(self) -> "FakeServer":
        if os.getuid() != 0:
            pytest.skip("starting a server as nobody needs root (CI runs as root)")
        if shutil.which("runuser") is None:
            pytest.fail("runuser (util-linux) is needed to run a fake server as nobody", pytrace=False)
        self.proc = subprocess.Popen(
            ["runuser", "-u", "nobody", "--", "python3", "-c", FAKE_SERVER, self.socket_path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()
        self.wait_for(lambda ls: any(x.startswith("ready") for x in ls), "the fake server to listen")
        ready = next(x for x in self.lines if x.startswith("ready"))
        assert ready.split()[1] != "0", "the fake server must not run as root"
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.strip())
                self._cond.notify_all()

    def wait_for(self, pred: Callable[[List[str]], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc is not None and self.proc.poll() is not None and not pred(self.lines)):
                    raise AssertionError(f"timed out waiting for {what}; fake server said {self.lines!r}")
                self._cond.wait(min(left, 0.1))

    def connections(self, n: int = 1, timeout: float = 10.0) -> List[int]:
        """Bytes received on each of the first ``n`` connections (waits until they closed)."""
        self.wait_for(lambda ls: sum(x.startswith("conn") for x in ls) >= n, f"{n} closed connection(s)", timeout)
        with self._cond:
            return [int(x.split()[1]) for x in self.lines if x.startswith("conn")]

    def stop(self) -> None:
        p = self.proc
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
