#!/usr/bin/env bash
# Set up from nothing and run every check: lint, types, and the whole test suite,
# including the real tiers (llama.cpp server, PostgreSQL, headless Chromium).
#
#   bash scripts/test.sh [pytest args]   # README's test command; .ci/run runs exactly this
#
# Needs Python 3.11+ with pip and venv, and a C/C++ toolchain: llama-cpp-python is built
# from source once (~5-10 min on 2 cores) and kept in the wheel cache
# ~/.cache/llm-localfirst/wheels (LF_WHEEL_CACHE), so later runs install it in seconds.
# As root on Debian/Ubuntu the script installs what is missing with apt-get (build-essential,
# the PostgreSQL server, Chromium); elsewhere the PostgreSQL and Chromium tiers skip with a
# reason locally (and fail in CI, where CI=true).
#
# Setup output (pip, apt, the llama.cpp build) goes to a log file, printed at the start and
# shown in part if a step fails; lint, type and test output is shown as it happens.
# PYTHON picks the interpreter, LF_VENV the virtualenv, LF_LOG_DIR the log directory.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
VENV="${LF_VENV:-.venv}"
LOG_DIR="${LF_LOG_DIR:-.ci-logs}"
mkdir -p "$LOG_DIR"
LOG="$(cd "$LOG_DIR" && pwd -P)/test-setup.log"
: >"$LOG"
echo "== setup output goes to $LOG"

# Run a noisy setup step with its output in $LOG; on failure show the end of the log.
quiet() {
    local what="$1" started=$SECONDS status=0
    shift
    printf '== %s ... ' "$what"
    "$@" >>"$LOG" 2>&1 || status=$?
    if [ "$status" != 0 ]; then
        echo "FAILED (exit $status); the last lines of $LOG:"
        tail -n 60 "$LOG"
        exit "$status"
    fi
    echo "done ($((SECONDS - started)) s)"
}

is_root_with_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_updated=0
apt_update() {
    if [ "$apt_updated" = 0 ]; then
        quiet "apt-get update" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
}

if [ ! -x "$VENV/bin/python" ]; then
    quiet "creating the virtualenv $VENV" "$PY" -m venv "$VENV"
fi
quiet "upgrading pip" "$VENV/bin/python" -m pip install --upgrade pip
quiet "pip install -e '.[dev]'" "$VENV/bin/python" -m pip install -e '.[dev]'

echo "== ruff"; "$VENV/bin/ruff" check . && "$VENV/bin/ruff" format --check .
echo "== mypy --strict"; "$VENV/bin/mypy" --strict llm_localfirst

echo "== real tiers"
if ! command -v c++ >/dev/null 2>&1 || ! command -v cc >/dev/null 2>&1; then
    if is_root_with_apt; then
        apt_update
        quiet "apt-get install build-essential (to build llama.cpp)" \
            env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            build-essential
    else
        echo "no C/C++ compiler found: llama-cpp-python is built from source for the" \
             "llama.cpp tier; install one (Debian/Ubuntu: apt-get install build-essential," \
             "macOS: xcode-select --install) and run again" >&2
        exit 1
    fi
fi
quiet "llama-cpp-python[server] (first run builds it: ~5-10 min; then cached)" \
    env PYTHON="$VENV/bin/python" bash .ci/install-llama.sh
if is_root_with_apt; then
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
        apt_update
    fi
    quiet "Chromium (admin UI test)" bash .ci/install-browser.sh
fi
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ "$(id -u)" = 0 ]; then
    printf '== PostgreSQL (audit store tests) ... '
    if pg_env="$(bash .ci/start-postgres.sh 2>>"$LOG")"; then
        eval "$pg_env"
        export LF_TEST_POSTGRES_URL
        echo "running"
    else
        echo "FAILED; the last lines of $LOG:"
        tail -n 60 "$LOG"
        exit 1
    fi
fi

echo "== pytest"
set +e
"$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ -n "${LF_TEST_POSTGRES_URL:-}" ]; then bash .ci/start-postgres.sh stop >>"$LOG" 2>&1 || true; fi
exit $status
