"""The daemon's default socket path (PROTOCOL.md section 1)."""
from __future__ import annotations

import os
from typing import Mapping, Optional, Tuple

__all__ = ["default_socket_path", "resolve_socket_path", "SOCKET_ENV"]

SOCKET_ENV = "TRADEWIRE_SOCKET"


def resolve_socket_path(
    explicit: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    uid: Optional[int] = None,
) -> Tuple[str, str]:
    """Return ``(path, source)`` where ``source`` says which rule matched.

    First match wins, exactly as the daemon computes it:

    1. ``explicit`` (the ``--socket`` flag / ``socket_path=`` argument),
    2. ``$TRADEWIRE_SOCKET``,
    3. ``$XDG_RUNTIME_DIR/tradewire.sock``,
    4. ``/tmp/tradewire-$UID/tradewire.sock``.

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
        return os.path.join(x, "tradewire.sock"), "XDG_RUNTIME_DIR"
    if uid is None:
        uid = os.getuid()
    return f"/tmp/tradewire-{uid}/tradewire.sock", "default"


def default_socket_path(
    explicit: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    uid: Optional[int] = None,
) -> str:
    """The socket path to use: see :func:`resolve_socket_path`."""
    return resolve_socket_path(explicit, env, uid)[0]
