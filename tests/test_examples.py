"""Every example runs with ``--offline``: a subprocess, exit code 0, the output a reader expects.

Offline, the examples route to ``FakeUpstream`` fakes on loopback and use a scripted
director, so they need no model and no key. They run as a reader would run them
(``python examples/<name>.py --offline``), with warnings as errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: A cold interpreter importing the agent frameworks (and, for MCP, a server process).
TIMEOUT_SECONDS = 120

DECISIONS = [f"- Decision {n}:" for n in range(1, 9)]


def run_example(name: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / name), "--offline"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        env=dict(os.environ),
        check=False,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and "ResourceWarning" not in proc.stderr, proc.stderr
    return proc.stdout


def test_every_example_is_tested_here() -> None:
    shown = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert shown == {
        "quickstart.py",
        "manager_worker_pydantic_ai.py",
        "manager_worker_langchain.py",
        "mcp_client.py",
    }


def test_quickstart_shows_routing_bulk_work_and_a_sensitive_call_failing_closed() -> None:
    out = run_example("quickstart.py")
    assert "  bulk       local:local (fake-local)" in out
    assert "  reason     cloud:cloud (fake-cloud)" in out
    assert "  sensitive  local:local (fake-local)" in out
    assert "ran on local:local" in out and "The quarterly review covered hiring" in out
    assert "refused, fail-closed: the record was NOT sent to the cloud (audit id " in out
    assert out.rstrip().endswith("requests that reached the cloud model: 0")


def check_delegation(out: str) -> None:
    assert "-> local worker ran 'summarize' on local (fake-local): 2 piece(s)" in out
    answer = out.split("director's answer:", 1)[1]
    assert all(line in answer for line in DECISIONS)
    assert "model calls: local 3, cloud 0 (the notes never left the machine)" in out


def test_the_pydantic_ai_director_delegates_the_notes_and_reports_the_savings() -> None:
    out = run_example("manager_worker_pydantic_ai.py")
    check_delegation(out)
    assert "processed locally: " in out and " on fake-cloud)" in out


def test_the_langchain_director_loop_delegates_the_notes() -> None:
    check_delegation(run_example("manager_worker_langchain.py"))


def test_the_mcp_client_launches_the_server_over_stdio_and_reads_the_audit_log() -> None:
    out = run_example("mcp_client.py")
    assert "launching: " in out and out.splitlines()[0].endswith("llm-localfirst mcp")
    assert "connected to llm-localfirst " in out
    for tool in ("route", "complete", "delegate_to_worker"):
        assert f"\n  {tool} " in out
    assert "-> local:local (fake-local)" in out and "-> cloud:cloud (fake-cloud)" in out
    assert "2 piece(s) on local (fake-local):" in out
    assert all(line in out for line in DECISIONS)
    audit = out.split("audit://decisions", 1)[1]
    assert audit.count(" worker worker   ok       local:local") == 3
    assert audit.count(" mcp    route    dry_run ") == 3
    assert out.rstrip().endswith("model calls: local 3, cloud 0")
