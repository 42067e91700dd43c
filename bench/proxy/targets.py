"""The benchmark's processes: the fake upstream, llm-localfirst and the peer gateways.

Each ``start_*`` function launches one target as its own process group on a loopback
port, with its output in a log file, and returns a :class:`Service`; ``stop`` ends
that group (and only it). ``ensure_*`` install the peers where they are missing:
LiteLLM from PyPI into its own venv, the Portkey gateway from npm into its own
directory. Nothing here binds anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
MODEL = "bench-local"
CLIENT_KEY = "sk-bench-client-key"  # llm-localfirst's LF_PROXY_KEYS and LiteLLM's master key
UPSTREAM_KEY = "sk-upstream-not-checked"


class TargetError(RuntimeError):
    """A target could not be installed or started; the message says why."""


@dataclass
class Service:
    """One running target."""

    name: str
    url: str  # the chat completions URL
    headers: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log: Path | None = None
    version: str = ""
    notes: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def log_tail(self, lines: int = 30) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM this service's own process groups, then SIGKILL what is left after 15 s."""
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(
    args: list[str], log: Path, *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        # A new session = a process group of our own, so stop() ends exactly this tree.
        return subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    rest = url.split("://", 1)[1]
    hostport, path = rest.split("/", 1)
    host, port = hostport.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", "/" + path, body, {"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(service: Service, body: bytes, *, timeout: float) -> None:
    """Poll with a real chat request until the target answers it correctly.

    Raises:
        TargetError: the process died, or no correct answer within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not service.alive():
            raise TargetError(f"{service.name} exited during start-up:\n{service.log_tail()}")
        try:
            status, data = _post(service.url, body, service.headers, timeout=10)
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if status == 200 and b"The quick brown fox" in data:
                return
            last = f"HTTP {status}: {data[:300]!r}"
        time.sleep(0.5)  # a starting process: poll twice a second, bounded by the deadline
    raise TargetError(
        f"{service.name} not ready after {timeout:.0f} s ({last}):\n{service.log_tail()}"
    )


# ---------------------------------------------------------------------------- upstream


def start_upstream(workdir: Path) -> Service:
    port = free_port()
    log = workdir / "upstream.log"
    proc = _spawn([sys.executable, str(HERE / "upstream.py"), "--port", str(port)], log)
    return Service(
        "direct",
        f"http://127.0.0.1:{port}/v1/chat/completions",
        {"Authorization": f"Bearer {UPSTREAM_KEY}"},
        [proc],
        log,
        notes=["raw ASGI app, uvicorn 1 process, uvloop + httptools"],
    )


def upstream_base(upstream: Service) -> str:
    return upstream.url.removesuffix("/chat/completions")


# ---------------------------------------------------------------------------- llm-localfirst


def localfirst_policy(upstream: Service, variant: str = "") -> str:
    """The one-destination policy; ``cloud``: the upstream declared cloud and priced;
    ``budget``: that, plus a shared USD budget (issue 12) too large to run out."""
    dest = {
        "provider": "openai",
        "base_url": upstream_base(upstream),
        "model": MODEL,
        "locality": "local",
    }
    policy: dict[str, Any] = {
        "version": 1,
        "destinations": {MODEL: dest},
        "default": {"to": [MODEL]},
    }
    if variant in ("cloud", "budget"):
        dest.update(
            locality="cloud", api_key_env="LF_BENCH_CLOUD_KEY", price={"input": 0.8, "output": 4.0}
        )
    if variant == "batch":
        policy["audit"] = {"durability": "batch"}
    if variant == "budget":
        policy["budgets"] = [
            {"name": "bench", "period": "month", "limit_usd": 1e9, "on_exceeded": "refuse"}
        ]
    return json.dumps(policy, indent=2)  # JSON is YAML


def start_localfirst(
    workdir: Path, upstream: Service, variant: str = "", source: Path | None = None
) -> Service:
    """``serve`` on a one-destination policy; ``source``: run the package found there
    (``llm-localfirst@DIR`` in ``run.py --targets``, e.g. DIR from ``git archive``)."""
    exe = VENV_BIN / "llm-localfirst"
    if not exe.exists():
        raise TargetError(f"{exe} not found (pip install -e '.[server]' into this venv)")
    suffix = f"-{variant}" if variant else ""
    if source is not None:
        suffix += f"@{source.name}"
    policy = workdir / f"policy{suffix}.yaml"
    policy.write_text(localfirst_policy(upstream, variant))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LF_")}
    env.update(
        LF_DATA_DIR=str(workdir / "lf-data"),
        LF_AUDIT_URL=f"sqlite:///{workdir / f'lf-audit{suffix}.db'}",
        LF_PROXY_KEYS=CLIENT_KEY,
        LF_BENCH_CLOUD_KEY="bench-not-a-key",
    )
    if source is not None:  # another checkout's package, for A/B figures from one run
        if not (source / "llm_localfirst" / "__init__.py").exists():
            raise TargetError(f"{source} holds no llm_localfirst package")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    log = workdir / f"llm-localfirst{suffix}.log"
    workers = ["--workers", "2"] if variant == "workers2" else []
    # --policy before the sub-command: the CLI takes it as a global option.
    proc = _spawn(
        [
            str(exe),
            "--policy",
            str(policy),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *workers,
        ],
        log,
        env=env,
        cwd=workdir,
    )
    version = subprocess.run(
        [sys.executable, "-c", "import llm_localfirst; print(llm_localfirst.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    notes = {
        "": "",
        "cloud": "; the upstream declared cloud, priced",
        "budget": "; the upstream declared cloud, priced, a shared USD budget",
        "workers2": "; `serve --workers 2`",
        "batch": "; `audit: {durability: batch}`",
    }[variant]
    if source is not None:
        notes += f"; the package in {source}"
    return Service(
        f"llm-localfirst{suffix}",
        f"http://127.0.0.1:{port}/v1/chat/completions",
        {"Authorization": f"Bearer {CLIENT_KEY}"},
        [proc],
        log,
        version,
        ["`llm-localfirst serve`, client key on, all detectors, audit to SQLite" + notes],
    )


# ---------------------------------------------------------------------------- LiteLLM


def ensure_litellm(venv: Path, *, install: bool) -> str:
    """LiteLLM's version in its own venv, installing ``litellm[proxy]`` there if needed."""
    python = venv / "bin" / "python"
    if not (venv / "bin" / "litellm").exists():
        if not install:
            raise TargetError(f"no LiteLLM in {venv} (run without --no-install)")
        print(f"installing litellm[proxy] into {venv} (a few minutes, once)...", flush=True)
        # A venv of its own: LiteLLM pins its own versions of half our dependencies.
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        done = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "litellm[proxy]",
            ],
            timeout=1800,
            check=False,
        )
        if done.returncode != 0:
            raise TargetError(f"pip install 'litellm[proxy]' into {venv} failed")
    out = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise TargetError(f"litellm in {venv} does not import: {out.stderr[-300:]}")
    return out.stdout.strip()


def start_litellm(
    workdir: Path, upstream: Service, venv: Path, version: str, workers: int = 2
) -> Service:
    config = workdir / "litellm.yaml"
    config.write_text(
        json.dumps(
            {
                "model_list": [
                    {
                        "model_name": MODEL,
                        "litellm_params": {
                            "model": f"openai/{MODEL}",
                            "api_base": upstream_base(upstream),
                            "api_key": UPSTREAM_KEY,
                        },
                    }
                ],
                "general_settings": {"master_key": CLIENT_KEY},
            },
            indent=2,
        )
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM", "DATABASE_URL"))}
    # The bundled price map instead of fetching it over HTTP at import; telemetry off
    # (the flag is a documented no-op since LiteLLM removed telemetry, kept for older ones).
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False", NO_DOCS="True")
    log = workdir / "litellm.log"
    # uvicorn's default 5 s worker health-check kills LiteLLM workers that take longer
    # to import on a busy 2-core machine, forever; give them time to come up.
    proc = _spawn(
        [
            str(venv / "bin" / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            str(workers),
            "--timeout_worker_healthcheck",
            "180",
            "--telemetry",
            "False",
        ],
        log,
        env=env,
        cwd=workdir,
    )
    return Service(
        "litellm",
        f"http://127.0.0.1:{port}/v1/chat/completions",
        {"Authorization": f"Bearer {CLIENT_KEY}"},
        [proc],
        log,
        version,
        [
            f"{workers} workers, master key, no database, "
            "LITELLM_LOCAL_MODEL_COST_MAP=True, --telemetry False"
        ],
    )


# ---------------------------------------------------------------------------- Portkey

PORTKEY_PACKAGE = "@portkey-ai/gateway"


def ensure_portkey(directory: Path, *, install: bool) -> str:
    """The Portkey gateway's version in ``directory``, npm-installing it there if needed."""
    pkg = directory / "node_modules" / "@portkey-ai" / "gateway"
    if not (pkg / "build" / "start-server.js").exists():
        if not install:
            raise TargetError(f"no Portkey gateway in {directory}")
        if (
            subprocess.run(
                ["sh", "-c", "command -v node && command -v npm"], capture_output=True, check=False
            ).returncode
            != 0
        ):
            raise TargetError("node/npm not installed")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "package.json").write_text(
            json.dumps(
                {
                    "name": "lf-bench-portkey",
                    "private": True,
                    "dependencies": {PORTKEY_PACKAGE: "^1"},
                },
                indent=2,
            )
        )
        print(f"installing {PORTKEY_PACKAGE} into {directory}...", flush=True)
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=directory,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise TargetError(f"npm install {PORTKEY_PACKAGE} failed")
    return str(json.loads((pkg / "package.json").read_text())["version"])


def start_portkey(workdir: Path, upstream: Service, directory: Path, version: str) -> Service:
    port = free_port()
    env = {**os.environ, "NODE_ENV": "production"}
    log = workdir / "portkey.log"
    peers = HERE / "peers"
    proc = _spawn(
        [
            "node",
            "--require",
            str(peers / "listen-loopback.cjs"),
            "--require",
            str(peers / "mutable-fetch-headers.cjs"),
            str(directory / "node_modules/@portkey-ai/gateway/build/start-server.js"),
            f"--port={port}",
            "--headless",
        ],
        log,
        env=env,
        cwd=workdir,
    )
    return Service(
        "portkey",
        f"http://127.0.0.1:{port}/v1/chat/completions",
        {
            "Authorization": f"Bearer {UPSTREAM_KEY}",
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": upstream_base(upstream),
        },
        [proc],
        log,
        version,
        [
            "Node, 1 process, provider + custom host by header; "
            "fetch-headers work-around for Portkey-AI/gateway#1389"
        ],
    )
