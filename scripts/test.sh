#!/usr/bin/env bash
# Set up from nothing and run every check: lint, types, and the whole test suite,
# including the real tiers (llama.cpp server, PostgreSQL, headless Chromium).
#
#   bash scripts/test.sh            # README's test command; .ci/run runs exactly this
#
# Needs only Python 3.11+ and pip. As root on Debian/Ubuntu it also installs the
# PostgreSQL server and Chromium with apt-get; elsewhere those tiers skip with a
# reason locally (and fail in CI, where CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
VENV="${LF_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[dev]'

echo "== ruff"; "$VENV/bin/ruff" check .
echo "== mypy --strict"; "$VENV/bin/mypy" --strict llm_localfirst

echo "== real tiers"
PYTHON="$VENV/bin/python" bash .ci/install-llama.sh
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
        apt-get update -qq >/dev/null || true
    fi
    bash .ci/install-browser.sh
fi
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ "$(id -u)" = 0 ]; then
    eval "$(bash .ci/start-postgres.sh)"
    export LF_TEST_POSTGRES_URL
fi

echo "== pytest"
set +e
"$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ -n "${LF_TEST_POSTGRES_URL:-}" ]; then bash .ci/start-postgres.sh stop || true; fi
exit $status
