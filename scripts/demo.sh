#!/usr/bin/env bash
# Set up llm-localfirst and run its main job, on a machine with only Python and pip.
#
#   bash scripts/demo.sh
#
# 1. installs the package with every extra into .venv;
# 2. prints the doctor report (config, allowlist, local model up/down, audit log);
# 3. shows routing decisions without calling a model (bulk, reason, sensitive);
# 4. starts the MCP server over stdio and talks to it with the MCP SDK's client;
# 5. if a local model answers, runs one real completion on it;
# 6. serves the OpenAI-compatible proxy on http://127.0.0.1:8787/v1 (Ctrl-C to stop).
#    Point any OpenAI client's base URL at it; with Ollama running it serves real requests.
#
# LF_* variables (see README) change the local server, models and policy; LF_DEMO_NO_SERVE=1
# stops after step 5.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
VENV="${LF_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[all]'
LF="$VENV/bin/llm-localfirst"

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
"$VENV/bin/python" examples/mcp_client.py

if "$LF" doctor --json | grep -q '"sensitive_requests": "served locally'; then
    echo; echo "== a real completion on your local model"
    "$LF" complete "Say hello in five words." --kind bulk --max-tokens 32
fi

echo; echo "== recent decisions in the audit log"
"$LF" audit tail -n 8

if [ "${LF_DEMO_NO_SERVE:-0}" != 1 ]; then
    echo; echo "== OpenAI-compatible proxy on http://127.0.0.1:8787/v1 (Ctrl-C to stop)"
    exec "$LF" serve --host 127.0.0.1 --port 8787
fi
