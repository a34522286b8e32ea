"""The daemon's socket path (docs/PROTOCOL.md section 1) and the checks made
before talking to whatever listens there.

Another user can create ``/tmp/tradewire-$UID/`` before the daemon does and
put a server of their own in it.  The daemon refuses such a directory; the
clients refuse it too (:func:`check_socket_dir`), and after connecting they
make sure the server runs as this user or as root (:func:`check_peer`) before
they send anything.
"""
from __future__ import annotations

import os
import socket
import stat
import struct
from typing import Mapping, Optional, Tuple

from .errors import DaemonUnavailable, UnsafeSocketDirectory, UntrustedPeer

__all__ = [
    "default_socket_path",
    "resolve_socket_path",
    "default_socket_dir",
    "check_socket_dir",
    "check_peer",
    "peer_credentials",
    "SOCKET_ENV",
    "DEFAULT_SOURCE",
]

SOCKET_ENV = "TRADEWIRE_SOCKET"
#: the ``source`` :func:`resolve_socket_path` gives for the last rule
DEFAULT_SOURCE = "default"
#: the directory of the last rule; ``{uid}`` is replaced by the user id.  Tests
#: point it elsewhere; programs have no reason to change it (the daemon uses
#: exactly ``/tmp/tradewire-$UID``).
DEFAULT_SOCKET_DIR = "/tmp/tradewire-{uid}"
SOCKET_NAME = "tradewire.sock"


def default_socket_dir(uid: Optional[int] = None) -> str:
    """``/tmp/tradewire-$UID``: the directory of the last socket path rule."""
    return DEFAULT_SOCKET_DIR.format(uid=os.getuid() if uid is None else uid)


def resolve_socket_path(
    explicit: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    uid: Optional[int] = None,
) -> Tuple[str, str]:
    """Return ``(path, source)`` where ``source`` says which rule matched.

    First match wins, exactly as the daemon computes it:

    1. ``explicit`` (the ``--socket`` flag / ``socket_path=`` argument): ``"argument"``,
    2. ``$TRADEWIRE_SOCKET``: ``"TRADEWIRE_SOCKET"``,
    3. ``$XDG_RUNTIME_DIR/tradewire.sock``: ``"XDG_RUNTIME_DIR"``,
    4. ``/tmp/tradewire-$UID/tradewire.sock``: ``"default"``.

    An empty string (argument or variable) counts as not set.
    """
    if explicit:
        return os.fspath(explicit), "argument"
    if env is None:
        env = os.environ
    v = env.get(SOCKET_ENV)
    if v:
        return v, SOCKET_ENV
    x = env.get("XDG_RUNTIME_DIR")
    if x:
        return os.path.join(x, SOCKET_NAME), "XDG_RUNTIME_DIR"
    return os.path.join(default_socket_dir(uid), SOCKET_NAME), DEFAULT_SOURCE


def default_socket_path(
    explicit: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    uid: Optional[int] = None,
) -> str:
    """The socket path to use: see :func:`resolve_socket_path`."""
    return resolve_socket_path(explicit, env, uid)[0]


def check_socket_dir(directory: str, socket_path: Optional[str] = None, uid: Optional[int] = None) -> None:
    """Refuse a default socket directory another user could control.

    ``directory`` (``/tmp/tradewire-$UID``) must exist and be a real directory
    (not a symlink), owned by ``uid`` (default: ours), with mode exactly 0700
    -- what the daemon creates.  Raises :class:`~tradewire.DaemonUnavailable`
    when it does not exist, :class:`~tradewire.UnsafeSocketDirectory`
    otherwise.
    """
    if uid is None:
        uid = os.getuid()
    sock = socket_path or os.path.join(directory, SOCKET_NAME)
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        raise DaemonUnavailable(
            sock,
            f"socket directory {directory} does not exist",
            DEFAULT_SOURCE,
            message=f"no daemon: socket directory {directory} does not exist (is tradewired running?)",
        ) from None
    except OSError as e:
        raise UnsafeSocketDirectory(directory, f"cannot lstat it: {e.strerror or e}", sock) from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeSocketDirectory(directory, "is a symlink", sock)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeSocketDirectory(directory, "is not a directory", sock)
    if st.st_uid != uid:
        raise UnsafeSocketDirectory(directory, f"owned by uid {st.st_uid}, not {uid}", sock)
    mode = stat.S_IMODE(st.st_mode)
    if mode != 0o700:
        raise UnsafeSocketDirectory(directory, f"mode {mode:04o}, expected 0700", sock)


def peer_credentials(sock: "socket.socket") -> Tuple[Optional[int], int, Optional[int]]:
    """``(pid, uid, gid)`` of the process at the other end of a connected Unix socket.

    Linux: ``SO_PEERCRED``.  Where that does not exist, ``(None, owner of the
    socket file, None)`` -- weaker: it says who created the socket file.
    """
    if hasattr(socket, "SO_PEERCRED"):
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
        return pid, uid, gid
    name = sock.getpeername()
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    return None, os.stat(name).st_uid, None


def check_peer(sock: "socket.socket", socket_path: str, uid: Optional[int] = None) -> None:
    """Raise :class:`~tradewire.UntrustedPeer` unless the server at the other
    end of ``sock`` runs as ``uid`` (default: ours) or as root.

    Called right after connecting, before anything is sent.
    """
    if uid is None:
        uid = os.getuid()
    try:
        pid, peer_uid, gid = peer_credentials(sock)
    except OSError as e:
        raise UntrustedPeer(socket_path, None, None, None, f"cannot read its credentials: {e.strerror or e}") from None
    if peer_uid not in (uid, 0):
        who = f" (pid {pid})" if pid else ""
        raise UntrustedPeer(
            socket_path, peer_uid, pid, gid,
            f"server runs as uid {peer_uid}{who}; only uid {uid} (you) or 0 (root) is trusted",
        )
