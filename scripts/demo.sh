#!/usr/bin/env bash
# Set up llm-localfirst and run its main job, on a machine with only Python 3.11+ and pip.
#
#   bash scripts/demo.sh
#
# 1. installs the package with every extra into ./.venv (pip's output goes to a log file);
# 2. prints the doctor report (config, allowlist, local model up/down, audit log);
# 3. shows routing decisions without calling a model (bulk, reason, sensitive);
# 4. starts the MCP server over stdio and talks to it with the MCP SDK's client;
# 5. if a local model answers, runs one real completion on it;
# 6. prints how to use what it installed (nothing is put on your PATH) and a ready-to-paste
#    Claude Desktop config with absolute paths;
# 7. serves the OpenAI-compatible proxy on http://127.0.0.1:8787/v1 (Ctrl-C to stop).
#    Point any OpenAI client's base URL at it; with Ollama running it serves real requests.
#
# LF_* variables (see README) change the local server, models and policy; LF_DEMO_NO_SERVE=1
# stops after step 6. PYTHON picks the interpreter, LF_VENV the virtualenv, LF_LOG_DIR the
# log directory (default .ci-logs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd -P)"

PY="${PYTHON:-python3}"
VENV="${LF_VENV:-.venv}"
LOG_DIR="${LF_LOG_DIR:-.ci-logs}"
mkdir -p "$LOG_DIR"
LOG="$(cd "$LOG_DIR" && pwd -P)/demo-install.log"
: >"$LOG"

# Run a noisy setup step with its output in $LOG; on failure show the end of the log.
quiet() {
    local what="$1" started=$SECONDS status=0
    shift
    printf '== %s ... ' "$what"
    "$@" >>"$LOG" 2>&1 || status=$?
    if [ "$status" != 0 ]; then
        echo "FAILED (exit $status); the last lines of $LOG:"
        tail -n 40 "$LOG"
        exit "$status"
    fi
    echo "done ($((SECONDS - started)) s)"
}

echo "== installing llm-localfirst with every extra into $VENV (log: $LOG)"
if [ ! -x "$VENV/bin/python" ]; then
    quiet "creating the virtualenv" "$PY" -m venv "$VENV"
fi
VENV_ABS="$(cd "$VENV" && pwd -P)"
quiet "upgrading pip" "$VENV/bin/python" -m pip install --upgrade pip
quiet "pip install -e '.[all]'" "$VENV/bin/python" -m pip install -e '.[all]'
LF="$VENV_ABS/bin/llm-localfirst"
"$LF" --version

echo; echo "== llm-localfirst doctor"
"$LF" doctor

echo; echo "== routing decisions (no model is called)"
"$LF" route "Summarise these meeting notes" --kind bulk
"$LF" route "Find the flaw in this proof" --kind reason
set +e
"$LF" route "Draft a reply to jane.doe@example.com about her invoice"
code=$?
set -e
if [ "$code" = 3 ]; then
    echo "   ^ sensitive by content (an e-mail address) and no local model is up: failed closed (exit 3)"
fi

echo; echo "== MCP server (stdio), driven by the MCP SDK's client"
"$VENV_ABS/bin/python" examples/mcp_client.py

if "$LF" doctor --json | grep -q '"sensitive_requests": "served locally'; then
    echo; echo "== a real completion on your local model"
    "$LF" complete "Say hello in five words." --kind bulk --max-tokens 32
else
    echo; echo "== no local model is up: nothing was sent anywhere for the sensitive request."
    echo "   Install Ollama (https://ollama.com), pull the model the doctor's hint names"
    echo "   (with the defaults: ollama pull qwen2.5:7b), keep 'ollama serve' running,"
    echo "   and run this script again."
fi

echo; echo "== recent decisions in the audit log"
"$LF" audit tail -n 8

cat <<USAGE

== How to use what this installed
Everything is in $VENV_ABS; nothing was put on your PATH. Either activate it:
    source $VENV_ABS/bin/activate
    llm-localfirst doctor
or call it by its absolute path, from any directory:
    $LF doctor
    $VENV_ABS/bin/python -m llm_localfirst route "summarise this" --kind bulk
    $VENV_ABS/bin/python $ROOT/examples/quickstart.py --offline

== Claude Desktop
Paste this into claude_desktop_config.json (macOS: ~/Library/Application Support/Claude/,
Windows: %APPDATA%\\Claude\\), add "ANTHROPIC_API_KEY" to "env" if you want the cloud side,
then restart Claude Desktop:
USAGE
"$LF" mcp --print-config

if [ "${LF_DEMO_NO_SERVE:-0}" != 1 ]; then
    echo; echo "== OpenAI-compatible proxy on http://127.0.0.1:8787/v1 (Ctrl-C to stop)"
    exec "$LF" serve --host 127.0.0.1 --port 8787
fi
