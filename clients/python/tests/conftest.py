"""Fixtures that run the real tradewired daemon.

The binary: ``$TRADEWIRED`` (an absolute path), else
``<repo root>/.build/debug/tradewired``.  Each daemon gets a short unique
socket path under /tmp, is started as
``tradewired --socket PATH --seed 42 --log-level warning [extra flags] [storage]``,
is ready once its output shows ``listening on PATH`` (30 s at most), and is
stopped with SIGTERM (SIGKILL after 15 s).  No daemon outlives the session.
A missing binary fails the tests (it does not skip them).

Storage (``TW_TEST_STORAGE``): ``journal`` (the default when unset) adds
``--data-dir <a fresh directory under the test's tmp dir>``, removed once the
daemon stopped; ``ephemeral`` adds ``--ephemeral``.  A test whose extra flags
have ``--data-dir`` or ``--ephemeral`` keeps its own choice (nothing is added);
``cluster`` makes each daemon a node of one PostgreSQL the run starts (``--cluster``).
Tests marked ``journal_only`` (they restart a daemon on its data dir, or kill it)
are skipped when ``TW_TEST_STORAGE`` is ``ephemeral`` or ``cluster``: they pick their storage themselves,
so the ephemeral pass would only run them a second time.
"""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import Daemon, DaemonFactory, daemon_binary, storage_mode  # noqa: E402
from tradewire import Client  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "journal_only: needs a journal of its own; skipped when TW_TEST_STORAGE=ephemeral"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    if storage_mode() == "journal":
        return
    skip = pytest.mark.skip(reason=f"journal-only (TW_TEST_STORAGE={storage_mode()})")
    for item in items:
        if "journal_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tradewired_bin() -> Path:
    return daemon_binary()


@pytest.fixture
def daemon_factory(tradewired_bin: Path, tmp_path: Path) -> Iterator[DaemonFactory]:
    """Start fresh daemons inside one test; all are stopped at its end."""
    f = DaemonFactory(tradewired_bin, tmp_path / "daemons")
    try:
        yield f
    finally:
        f.cleanup()


@pytest.fixture(scope="session")
def shared_daemon(tradewired_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon for the tests that only need a working bus (use unique event types)."""
    f = DaemonFactory(tradewired_bin, tmp_path_factory.mktemp("shared-daemon"))
    try:
        yield f.start()
    finally:
        f.cleanup()


@pytest.fixture
def socket_path(shared_daemon: Daemon) -> str:
    return shared_daemon.socket_path


@pytest.fixture
def client(socket_path: str) -> Iterator[Client]:
    with Client(socket_path, timeout=30) as c:
        yield c


@pytest.fixture
def etype() -> str:
    """A unique event type name for this test."""
    return f"pytest.{uuid.uuid4().hex[:12]}"


