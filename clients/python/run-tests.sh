#!/usr/bin/env bash
# Run the Python client's tests against a live tradewired daemon.
# Works from any directory. The daemon binary: $TRADEWIRED (absolute path),
# else <repo root>/.build/debug/tradewired (build it first). Extra arguments go to pytest.
# TW_TEST_STORAGE: journal (the default: each daemon gets --data-dir a fresh directory under
# the test's tmp dir, removed afterwards) or ephemeral (--ephemeral); tests that pass
# --data-dir or --ephemeral themselves keep their choice. See tests/conftest.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="${PYTHON:-python3}"
if ! "$py" -c 'import pytest' >/dev/null 2>&1; then
    "$py" -m pip install --quiet pytest
fi
cd "$root"
exec "$py" -m pytest -q clients/python/tests "$@"
