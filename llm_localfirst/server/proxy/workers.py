"""``serve --workers N``: N proxy processes on one port, reloaded and measured as one.

This module owns what makes several worker processes look like one proxy:

- **One port.** The parent binds the socket once and uvicorn's supervisor hands it
  to N spawned workers; the kernel spreads connections among them. A worker that
  dies is replaced.
- **One policy.** ``SIGHUP`` to the parent is forwarded to every worker, and each
  reloads in place exactly as a single process does: an invalid policy is refused
  and the previous one keeps serving. ``POST /admin/reload`` on any worker reloads
  that worker and then signals the parent, which forwards ``SIGHUP`` to all of them
  (the worker that was asked reloads twice, which is harmless).
- **One ``/metrics``.** Every worker writes a snapshot of its samples to a shared
  directory once a second; the worker that is scraped adds the other workers'
  counters and histograms to its own live ones. Gauges (in-flight requests, process
  memory, budget spend read from the shared store) are the scraped worker's own.
  Snapshots of workers that exited stay, so counters never go backwards.
- **One audit log.** Every worker opens the same audit store (``LF_AUDIT_URL`` or
  the data directory); each writer keeps its own hash chain, so they never contend
  for a chain head.

What it must never do: bind anything but the host it is given, or let a worker start
with a policy the parent could not load (the parent validates settings and policy
before any worker is spawned, so a bad file fails ``serve`` at once, exit 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from .metrics import ProxyMetrics

__all__ = [
    "SPEC_VARIABLE",
    "MetricsSharing",
    "notify_reloaded",
    "resolve_workers",
    "serve_workers",
    "worker_app",
]

log = logging.getLogger("llm_localfirst.proxy")

#: The environment variable through which the parent tells a worker how it was started
#: (JSON: host, port, supervisor pid, metrics directory). Not a setting: ``Settings``
#: ignores it.
SPEC_VARIABLE = "LF_SERVE_WORKER"
SNAPSHOT_INTERVAL_S = 1.0
_SUMMED = frozenset({"counter", "histogram", "summary", "gaugehistogram"})


def resolve_workers(value: str | int) -> int:
    """``--workers`` to a process count: a positive integer, or ``auto`` for the cores.

    Raises:
        ValueError: neither ``auto`` nor a positive integer.
    """
    if isinstance(value, str) and value.strip().lower() == "auto":
        return max(
            1,
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1),
        )
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"--workers must be a positive integer or 'auto', not {value!r}") from None
    if count < 1:
        raise ValueError(f"--workers must be at least 1, not {count}")
    return count


# --------------------------------------------------------------------------- metrics


class MetricsSharing:
    """Per-worker metric snapshots in one directory, merged at scrape time.

    Args:
        directory: Shared by every worker of one ``serve``.
        pid: This worker's process id (its snapshot file name).
    """

    def __init__(self, directory: str | Path, *, pid: int | None = None) -> None:
        self.directory = Path(directory)
        self.pid = os.getpid() if pid is None else pid

    def write(self, metrics: ProxyMetrics) -> None:
        """Write this worker's samples atomically (a reader never sees half a file)."""
        data = [
            {
                "name": m.name,
                "type": m.type,
                "doc": m.documentation,
                "samples": [[s.name, s.labels, s.value] for s in m.samples],
            }
            for m in metrics.registry.collect()
        ]
        path = self.directory / f"{self.pid}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)

    def _others(self) -> Iterator[list[dict[str, Any]]]:
        for path in sorted(self.directory.glob("*.json")):
            if path.stem == str(self.pid):
                continue
            try:
                yield json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):  # a worker mid-replace on a platform without
                continue  # atomic rename; the next scrape has it

    def merged(self, metrics: ProxyMetrics) -> list[Metric]:
        """This worker's live families plus the other workers' summed samples."""
        families: dict[str, Metric] = {}
        values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for family in metrics.registry.collect():
            families[family.name] = family
            values[family.name] = {
                (s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples
            }
        for snapshot in self._others():
            for item in snapshot:
                name, kind = item["name"], item["type"]
                if name not in families:
                    families[name] = Metric(name, item["doc"], kind)
                    values[name] = {}
                if kind not in _SUMMED and values[name]:
                    continue  # a gauge: the scraped worker's own value
                table = values[name]
                for sample_name, labels, value in item["samples"]:
                    key = (sample_name, tuple(sorted(labels.items())))
                    if sample_name.endswith("_created"):
                        table[key] = min(table.get(key, value), value)
                    else:
                        table[key] = table.get(key, 0.0) + value
        out: list[Metric] = []
        for name, family in families.items():
            merged = Metric(name, family.documentation, family.type)
            for (sample_name, labels), value in values[name].items():
                merged.add_sample(sample_name, dict(labels), value)
            out.append(merged)
        return out

    def render(self, metrics: ProxyMetrics) -> bytes:
        """The text exposition of :meth:`merged`."""
        families = self.merged(metrics)

        class _Merged:
            def collect(self) -> list[Metric]:
                return families

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Merged())
        return generate_latest(registry)


class _Snapshots:
    """ASGI wrapper that starts the worker's once-a-second snapshot task."""

    def __init__(self, app: ASGIApp, sharing: MetricsSharing, metrics: ProxyMetrics) -> None:
        self.app = app
        self.sharing = sharing
        self.metrics = metrics
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        await self.app(scope, receive, send)

    async def _run(self) -> None:
        while True:
            try:
                self.sharing.write(self.metrics)
            except OSError as exc:  # a full disk must not stop the worker serving
                log.warning("metrics snapshot not written (%s)", exc)
            await asyncio.sleep(SNAPSHOT_INTERVAL_S)


# --------------------------------------------------------------------------- reload


def notify_reloaded(trigger: str) -> None:
    """After a successful reload asked of one worker, have the parent reload them all.

    A reload triggered by ``SIGHUP`` came from the parent already and is not sent back.
    Outside ``serve --workers`` this does nothing.
    """
    if trigger == "SIGHUP":
        return
    spec = os.environ.get(SPEC_VARIABLE)
    if not spec:
        return
    with contextlib.suppress(ValueError, KeyError, ProcessLookupError, PermissionError):
        os.kill(int(json.loads(spec)["supervisor"]), signal.SIGHUP)


# --------------------------------------------------------------------------- processes


def worker_app() -> ASGIApp:
    """The app of one worker (uvicorn calls this factory in each spawned process)."""
    from ...config import Settings
    from .app import build_router, create_app, tune_for_serving
    from .metrics import ProxyMetrics

    spec = json.loads(os.environ[SPEC_VARIABLE])
    settings = Settings.load()
    router = build_router(settings)
    router.warm()
    metrics = ProxyMetrics()
    sharing = MetricsSharing(spec["metrics_dir"])
    metrics.shared = sharing
    app = create_app(
        router, settings, host=spec["host"], port=spec["port"] or None, metrics=metrics
    )
    tune_for_serving()
    return _Snapshots(app, sharing, metrics)


def serve_workers(
    *, policy: str | None, host: str, port: int, workers: int, config_options: dict[str, Any]
) -> int:
    """Run ``workers`` proxy processes on one port until stopped.

    Args:
        policy: A policy file (else ``LF_POLICY``, else the ``LF_*`` default policy).
        host: Address to bind.
        port: Port to bind.
        workers: Number of worker processes (at least 2).
        config_options: The uvicorn options a single-process ``serve`` uses.

    Returns:
        0 after a clean shutdown, 1 when the socket could not be bound.
    """
    import uvicorn
    from uvicorn.supervisors.multiprocess import Multiprocess

    class _Supervisor(Multiprocess):
        def handle_hup(self) -> None:
            # uvicorn restarts every worker on SIGHUP; we reload them in place instead,
            # so an invalid policy is refused and the previous one keeps serving.
            log.info("SIGHUP: reloading the policy in %d workers", len(self.processes))
            for process in self.processes:
                if process.pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGHUP)

    metrics_dir = tempfile.mkdtemp(prefix="llm-localfirst-metrics-")
    if policy:
        os.environ["LF_POLICY"] = str(Path(policy).resolve())
    os.environ[SPEC_VARIABLE] = json.dumps(
        {"host": host, "port": port, "supervisor": os.getpid(), "metrics_dir": metrics_dir}
    )
    config = uvicorn.Config(
        f"{__name__}:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **config_options,
    )
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn exits when the address is in use
        return 1
    sys.stderr.write(f"llm-localfirst: {workers} workers on http://{host}:{port}/v1\n")
    try:
        _Supervisor(config, sockets=[sock]).run()
    finally:
        sock.close()
        for path in Path(metrics_dir).glob("*"):
            with contextlib.suppress(OSError):
                path.unlink()
        with contextlib.suppress(OSError):
            os.rmdir(metrics_dir)
    return 0
