"""``serve`` exits 0 after a clean SIGTERM shutdown (a real subprocess)."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx2

from llm_localfirst.testing import FakeUpstream
from tests.server.conftest import ONE_LOCAL_POLICY

STARTED = "Application startup complete"


def test_serve_exits_0_after_a_clean_sigterm_shutdown(
    tmp_path: Path, fake_local: FakeUpstream
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(ONE_LOCAL_POLICY.format(name="local", url=fake_local.base_url))
    command = [
        sys.executable,
        "-c",
        "import sys; from llm_localfirst.cli import main; sys.exit(main())",
        "serve",
        "--policy",
        str(policy),
        "--port",
        "0",
    ]
    proc = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put("")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while True:
            line = lines.get(timeout=60)
            assert line, "serve exited before it started"
            if STARTED in line:
                break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        reader.join(10)
        assert proc.stderr is not None
        proc.stderr.close()


def test_the_mcp_http_server_exits_0_after_a_clean_sigterm_shutdown(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-c",
        "import sys; from llm_localfirst.cli import main; sys.exit(main())",
        "mcp",
        "--transport",
        "http",
        "--port",
        "0",
    ]
    proc = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=tmp_path
    )
    try:
        assert proc.stderr is not None
        line = ""
        while "MCP server on http" not in line:
            line = proc.stderr.readline()
            assert line, "the MCP server exited before it started"
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        # An answer means uvicorn is serving, so its signal handlers are in place.
        with httpx2.Client(timeout=30, trust_env=False) as client:
            assert client.get(url).status_code < 500
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()
