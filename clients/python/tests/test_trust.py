"""Never talk to an impostor: the default socket directory checks and the
peer-credential check, for the blocking client, the asyncio client and the CLI.

The default directory is pointed at a private temporary location through
``tradewire.paths.DEFAULT_SOCKET_DIR``, so a real ``/tmp/tradewire-$UID`` is
never touched.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from typing import Iterator, Optional

import pytest

import tradewire.paths
from support import FakeServer, client_env
from tradewire import (
    AsyncClient,
    Client,
    DaemonUnavailable,
    NotConnected,
    UnsafeSocketDirectory,
    UntrustedPeer,
    UntrustedSocket,
    default_socket_path,
)

NOBODY = 65534
KINDS = ["sync", "async"]


def open_client(kind: str, path: Optional[str] = None) -> dict:
    """Connect with the blocking or the asyncio client, ping, close; returns the ping result."""
    if kind == "sync":
        with Client(path, timeout=10) as c:
            return c.ping()

    async def main() -> dict:
        async with AsyncClient(path, timeout=10) as c:
            return await c.ping()

    return asyncio.run(asyncio.wait_for(main(), 30))


class DefaultDir:
    """A stand-in for ``/tmp/tradewire-$UID`` under a private temporary parent."""

    def __init__(self) -> None:
        self.parent = tempfile.mkdtemp(prefix="twdef-", dir="/tmp")
        self.path = os.path.join(self.parent, f"tradewire-{os.getuid()}")
        self.socket_path = os.path.join(self.path, "tradewire.sock")
        self._listener: Optional[socket.socket] = None

    def make(self, mode: int = 0o700) -> "DefaultDir":
        os.mkdir(self.path)
        os.chmod(self.path, mode)
        return self

    def listen(self, directory: Optional[str] = None) -> socket.socket:
        """A listening socket that never accepts: a connection attempt would be pending on it."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(os.path.join(directory or self.path, "tradewire.sock"))
        s.listen(8)
        s.setblocking(False)
        self._listener = s
        return s

    def nobody_connected(self) -> bool:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return True
        conn.close()
        return False

    def cleanup(self) -> None:
        if self._listener is not None:
            self._listener.close()
        shutil.rmtree(self.parent, ignore_errors=True)


@pytest.fixture
def default_dir(monkeypatch) -> Iterator[DefaultDir]:
    d = DefaultDir()
    monkeypatch.delenv("TRADEWIRE_SOCKET", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tradewire.paths, "DEFAULT_SOCKET_DIR", os.path.join(d.parent, "tradewire-{uid}"))
    assert default_socket_path() == d.socket_path
    try:
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    f = FakeServer()
    try:
        yield f.start()
    finally:
        f.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_default_dir_missing_says_no_daemon(default_dir: DefaultDir, kind: str) -> None:
    with pytest.raises(DaemonUnavailable) as ei:
        open_client(kind)
    msg = str(ei.value)
    assert f"no daemon: socket directory {default_dir.path} does not exist (is tradewired running?)" in msg


@pytest.mark.parametrize("kind", KINDS)
def test_default_dir_mode_0755_is_refused_before_connecting(default_dir: DefaultDir, kind: str) -> None:
    default_dir.make(0o755)
    default_dir.listen()
    with pytest.raises(UnsafeSocketDirectory) as ei:
        open_client(kind)
    e = ei.value
    assert isinstance(e, UntrustedSocket) and isinstance(e, NotConnected) and isinstance(e, ConnectionRefusedError)
    assert f"refusing {default_dir.path}: mode 0755, expected 0700" in str(e)
    assert e.directory == default_dir.path and e.reason == "mode 0755, expected 0700"
    assert default_dir.nobody_connected()


@pytest.mark.parametrize("kind", KINDS)
def test_default_dir_symlink_is_refused(default_dir: DefaultDir, kind: str) -> None:
    real = os.path.join(default_dir.parent, "elsewhere")
    os.mkdir(real, 0o700)
    os.chmod(real, 0o700)
    default_dir.listen(real)
    os.symlink(real, default_dir.path)
    with pytest.raises(UnsafeSocketDirectory) as ei:
        open_client(kind)
    assert f"refusing {default_dir.path}: is a symlink" in str(ei.value)
    assert default_dir.nobody_connected()


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root (CI runs as root)")
@pytest.mark.parametrize("kind", KINDS)
def test_default_dir_owned_by_another_user_is_refused(default_dir: DefaultDir, kind: str) -> None:
    default_dir.make(0o700)
    default_dir.listen()
    os.chown(default_dir.path, NOBODY, -1)
    with pytest.raises(UnsafeSocketDirectory) as ei:
        open_client(kind)
    assert f"refusing {default_dir.path}: owned by uid {NOBODY}, not {os.getuid()}" in str(ei.value)
    assert default_dir.nobody_connected()


def test_default_dir_not_a_directory_is_refused(default_dir: DefaultDir) -> None:
    with open(default_dir.path, "w"):
        pass
    with pytest.raises(UnsafeSocketDirectory) as ei:
        open_client("sync")
    assert "is not a directory" in str(ei.value)


@pytest.mark.parametrize("kind", KINDS)
def test_default_dir_0700_of_ours_connects(default_dir: DefaultDir, daemon_factory, kind: str) -> None:
    default_dir.make(0o700)
    daemon_factory.start(socket_path=default_dir.socket_path)
    assert open_client(kind) == {"pong": True}


@pytest.mark.parametrize("kind", KINDS)
def test_impostor_server_gets_nothing(fake_server: FakeServer, kind: str) -> None:
    with pytest.raises(UntrustedPeer) as ei:
        open_client(kind, fake_server.socket_path)
    e = ei.value
    assert isinstance(e, UntrustedSocket) and isinstance(e, ConnectionRefusedError)
    assert e.peer_uid == NOBODY and e.socket_path == fake_server.socket_path
    assert f"refusing {fake_server.socket_path}: server runs as uid {NOBODY}" in str(e)
    assert fake_server.connections(1) == [0], "the client sent bytes to the impostor"


def test_impostor_server_via_env_and_cli(fake_server: FakeServer, monkeypatch) -> None:
    monkeypatch.setenv("TRADEWIRE_SOCKET", fake_server.socket_path)
    with pytest.raises(UntrustedPeer):
        Client(timeout=5)
    r = subprocess.run(
        [sys.executable, "-m", "tradewire", "--socket", fake_server.socket_path, "ping"],
        capture_output=True, text=True, env=client_env(), timeout=30,
    )
    assert r.returncode == 3, r.stderr
    assert "refusing" in r.stderr and f"uid {NOBODY}" in r.stderr and r.stdout == ""
    assert fake_server.connections(2) == [0, 0], "the client sent bytes to the impostor"


def test_run_handler_stops_at_an_impostor(fake_server: FakeServer) -> None:
    from tradewire import run_handler

    with pytest.raises(UntrustedPeer):
        run_handler("*", lambda ev: None, socket_path=fake_server.socket_path, max_reconnect_delay=0.1)
    assert fake_server.connections(1) == [0], "the handler sent bytes to the impostor"


def test_own_daemon_passes_the_peer_check(socket_path: str) -> None:
    with Client(socket_path) as c:
        assert c.ping() == {"pong": True}
        assert tradewire.paths.peer_credentials(c._sock)[1] in (os.getuid(), 0)
