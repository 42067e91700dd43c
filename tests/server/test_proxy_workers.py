"""``serve --workers N``: one port, one policy (SIGHUP and /admin/reload), one /metrics.

The workers are real processes spawned by ``llm-localfirst serve --workers 2``; the
local model is a loopback ``FakeUpstream``.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from llm_localfirst.audit import AuditFilter, open_store
from llm_localfirst.server.proxy.metrics import ProxyMetrics
from llm_localfirst.server.proxy.workers import MetricsSharing, resolve_workers
from llm_localfirst.testing import FakeUpstream
from tests.server.conftest import ONE_LOCAL_POLICY
from tests.server.test_proxy_reload import _free_port

ADMIN = "workers-admin-token"


class Workers:
    """``llm-localfirst serve --workers 2`` in a subprocess, its log on a queue."""

    def __init__(self, policy: Path, env: dict[str, str], workers: str = "2") -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llm_localfirst.cli",
                "--policy",
                str(policy),
                "serve",
                "--port",
                str(self.port),
                "--workers",
                workers,
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put("")

    def wait_for(self, needle: str, count: int = 1, timeout: float = 60) -> None:
        """Until ``count`` new log lines contain ``needle`` (bounded)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while seen < count:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{seen}/{count} {needle!r}: {''.join(self.log)}") from None
            self.log.append(line)
            assert line, f"serve exited: {''.join(self.log)}"
            seen += needle in line

    def destinations(self, n: int) -> list[str]:
        """``x-lf-destination`` of ``n`` chats, each on a new connection."""
        out = []
        for _ in range(n):
            with httpx2.Client(timeout=10, trust_env=False) as client:
                r = client.post(
                    f"http://127.0.0.1:{self.port}/v1/chat/completions",
                    json={"messages": [{"role": "user", "content": "hello"}]},
                )
                assert r.status_code == 200, r.text
                out.append(r.headers["x-lf-destination"])
        return out

    def get(self, path: str) -> httpx2.Response:
        with httpx2.Client(timeout=10, trust_env=False) as client:
            return client.get(f"http://127.0.0.1:{self.port}{path}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code


@pytest.fixture
def other_local() -> Iterator[FakeUpstream]:
    with FakeUpstream(reply="from the new policy") as fake:
        yield fake


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "LF_DATA_DIR": str(tmp_path / "data"), "LF_ADMIN_TOKEN": ADMIN}


def test_workers_auto_means_one_per_core_and_bad_values_are_refused() -> None:
    assert resolve_workers("auto") >= 1
    assert resolve_workers("3") == 3
    for bad in ("0", "-1", "many"):
        with pytest.raises(ValueError, match="--workers"):
            resolve_workers(bad)


def test_two_workers_serve_one_port_reload_together_and_share_the_audit_store(
    fake_local: FakeUpstream, other_local: FakeUpstream, tmp_path: Path, env: dict[str, str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(ONE_LOCAL_POLICY.format(name="old", url=fake_local.base_url))
    server = Workers(path, env)
    try:
        server.wait_for("Application startup complete", count=2)
        assert set(server.destinations(12)) == {"old"}

        # SIGHUP to the parent reaches every worker; a bad file changes nothing.
        path.write_text("version: 1\nrules: [oops\n")
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for("previous policy stays active", count=2)
        assert set(server.destinations(8)) == {"old"}

        path.write_text(ONE_LOCAL_POLICY.format(name="new", url=other_local.base_url))
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for("policy reloaded", count=2)
        assert set(server.destinations(12)) == {"new"}

        # /admin/reload on whichever worker answers reloads the others too.
        path.write_text(ONE_LOCAL_POLICY.format(name="third", url=fake_local.base_url))
        with httpx2.Client(timeout=10, trust_env=False) as client:
            r = client.post(
                f"http://127.0.0.1:{server.port}/admin/reload",
                headers={"authorization": f"Bearer {ADMIN}"},
            )
        assert r.status_code == 200, r.text
        server.wait_for("policy reloaded", count=3)  # asked worker, then both via SIGHUP
        assert set(server.destinations(12)) == {"third"}
    finally:
        code = server.stop()
    assert code == 0, "".join(server.log)
    store = open_store(None, data_dir=Path(env["LF_DATA_DIR"]))
    try:
        rows = store.query(AuditFilter(face="proxy", limit=1000))
    finally:
        store.close()
    assert len(rows) == 12 + 8 + 12 + 12


def test_metrics_add_up_across_workers(
    fake_local: FakeUpstream, tmp_path: Path, env: dict[str, str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(ONE_LOCAL_POLICY.format(name="old", url=fake_local.base_url))
    server = Workers(path, env)
    try:
        server.wait_for("Application startup complete", count=2)
        server.destinations(30)
        deadline = time.monotonic() + 20
        totals: list[float] = []
        while time.monotonic() < deadline:
            totals = [_requests_total(server.get("/metrics").text) for _ in range(4)]
            if totals == [30.0] * 4:
                break
            time.sleep(0.25)
        assert totals == [30.0] * 4
    finally:
        assert server.stop() == 0


def test_a_scrape_adds_the_other_workers_counters_and_keeps_its_own_gauges(tmp_path: Path) -> None:
    mine, theirs = ProxyMetrics(process=False), ProxyMetrics(process=False)
    mine.requests["chat", "local", "local", "ok"] = 3
    theirs.requests["chat", "local", "local", "ok"] = 4
    theirs.requests["chat", "cloud", "cloud", "ok"] = 1
    theirs.total.observe("chat", 0.002)
    mine.in_flight, theirs.in_flight = 1, 7
    MetricsSharing(tmp_path, pid=2).write(theirs)
    mine.shared = MetricsSharing(tmp_path, pid=1)
    MetricsSharing(tmp_path, pid=1).write(mine)  # its own old snapshot is not added again
    mine.requests["chat", "local", "local", "ok"] = 5
    text = mine.render().decode()
    assert 'destination="local",endpoint="chat",locality="local",outcome="ok"} 9.0' in text
    assert 'destination="cloud",endpoint="chat",locality="cloud",outcome="ok"} 1.0' in text
    assert "llm_localfirst_in_flight_requests 1.0" in text
    assert 'llm_localfirst_request_duration_seconds_count{endpoint="chat"} 1.0' in text


def _requests_total(text: str) -> float:
    return sum(
        float(m.group(1))
        for m in re.finditer(r"^llm_localfirst_requests_total\{[^}]*\} (\S+)$", text, re.M)
    )
