"""Run a real llama.cpp server (``llama-cpp-python[server]``) for the local-model test tier.

``LlamaServer`` starts ``python -m llama_cpp.server`` as a subprocess on 127.0.0.1,
waits (bounded) until ``GET /v1/models`` answers, and can be stopped and restarted on
the same port so tests can simulate the local model going away and coming back.

Pytest fixtures (import them into ``tests/conftest.py``)::

    from tests.support.llama_server import (  # noqa: F401
        llama_server,
        llama_server_factory,
        tiny_model_path,
    )

* ``tiny_model_path`` (session): a tiny random-weight GGUF written once per session.
* ``llama_server`` (session): a running ``LlamaServer`` on that model.
* ``llama_server_factory`` (function): builds extra servers, all stopped at teardown;
  use it for tests that take a server down, so the shared one stays up.

If ``llama_cpp`` (or the server extras) is not importable the fixtures skip the test
locally and *fail* it when ``CI`` is set, so CI cannot silently lose the tier.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import httpx2
import pytest

__all__ = [
    "DEFAULT_MODEL_ALIAS",
    "LlamaServer",
    "LlamaServerError",
    "llama_server",
    "llama_server_factory",
    "require_llama_cpp",
    "tiny_model_path",
]

DEFAULT_MODEL_ALIAS = "tiny"

# Modules the tier needs: `python -m llama_cpp.server` and its extras, plus gguf/numpy
# for writing the model.  Checked with find_spec so the pytest process never loads
# libllama itself, and importing this module never fails when they are absent.
_SERVER_MODULES = (
    "gguf",
    "numpy",
    "llama_cpp",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)

# llama_cpp.server's settings are pydantic BaseSettings with no env prefix, so *any* of
# these env vars (matched case-insensitively) reconfigures the server, and `uvicorn.run`
# even prefers os.getenv("HOST"/"PORT") over the CLI flags.  Names like CACHE, MODEL,
# PORT or SEED are common in CI environments, so strip them all from the child's env.
# (Field list of llama_cpp.server.settings.Settings at 0.3.36, plus CONFIG_FILE.)
_ENV_BLOCKLIST = frozenset(
    """
    api_key cache cache_size cache_type chat_format chat_template_kwargs clip_model_path
    config_file disable_ping_events draft_model draft_model_num_pred_tokens embedding
    flash_attn hf_model_repo_id hf_pretrained_model_name_or_path hf_tokenizer_config_path
    host interrupt_requests kv_overrides last_n_tokens_size logits_all lora_base lora_path
    main_gpu model model_alias mul_mat_q n_batch n_ctx n_gpu_layers n_threads
    n_threads_batch n_ubatch numa offload_kqv port root_path rope_freq_base
    rope_freq_scale rope_scaling_type rpc_servers seed split_mode ssl_certfile ssl_keyfile
    tensor_split type_k type_v use_mlock use_mmap verbose vocab_only yarn_attn_factor
    yarn_beta_fast yarn_beta_slow yarn_ext_factor yarn_orig_ctx
    """.upper().split()
)


class LlamaServerError(RuntimeError):
    """The llama.cpp server failed to start or stop within its time bound."""


def missing_llama_modules() -> list[str]:
    """Return the server modules that are not importable (empty list: all present)."""
    return [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]


def require_llama_cpp() -> None:
    """Skip (locally) or fail (``CI`` set) the current test if the server can't run."""
    missing = missing_llama_modules()
    if not missing:
        return
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(
            "llama-cpp-python[server] is required in CI for the local-model tier but "
            f"these modules are missing: {', '.join(missing)}. Run .ci/install-llama.sh.",
            pytrace=False,
        )
    pytest.skip("llama-cpp-python not installed; run .ci/install-llama.sh")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """A ``llama_cpp.server`` subprocess bound to 127.0.0.1.

    Usable as a context manager (``with LlamaServer(path) as srv: ...``) or via
    explicit ``start()``/``stop()``.  ``start()`` after ``stop()`` reuses the same port,
    so ``base_url`` stays valid across a restart.
    """

    def __init__(
        self,
        model_path: Path | str,
        *,
        port: int | None = None,
        n_ctx: int = 2048,
        model_alias: str = DEFAULT_MODEL_ALIAS,
        startup_timeout: float = 60.0,
        interrupt_requests: bool = False,
        log_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.model_path = Path(model_path)
        self.port = port if port is not None else _free_port()
        self.n_ctx = n_ctx
        self.model_alias = model_alias
        self.startup_timeout = startup_timeout
        self.interrupt_requests = interrupt_requests
        self.extra_args = extra_args
        if log_dir is None:
            log_dir = Path(tempfile.mkdtemp(prefix="llama-server-"))
        self._log_dir = Path(log_dir)
        self.log_path = self._log_dir / f"llama-server-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    # -- properties ---------------------------------------------------------------
    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.root_url}/v1"

    @property
    def model_id(self) -> str:
        """The model id ``/v1/models`` reports (the ``--model_alias``)."""
        return self.model_alias

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle -------------------------------------------------------------------
    def command(self) -> list[str]:
        # fmt: off
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model", str(self.model_path),
            "--model_alias", self.model_alias,
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", "1",
            "--n_threads_batch", "2",
            "--n_gpu_layers", "0",
            "--seed", "0",
            "--verbose", "true",
            # llama-cpp-python's default (true) ends an in-flight stream early with
            # `data: [DONE]` as soon as another request arrives; queue instead.
            "--interrupt_requests", "true" if self.interrupt_requests else "false",
            *self.extra_args,
        ]
        # fmt: on

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k.upper() not in _ENV_BLOCKLIST}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self) -> LlamaServer:
        """Start the server (no-op if running) and block until it serves /v1/models."""
        if self.is_running():
            return self
        if not self.model_path.is_file():
            raise LlamaServerError(f"model file not found: {self.model_path}")
        self._log_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== start {' '.join(self.command())}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,  # Ctrl-C in pytest doesn't hit the server twice
            )
        try:
            self._wait_ready(deadline=t0 + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _wait_ready(self, *, deadline: float) -> None:
        assert self._proc is not None
        url = f"{self.base_url}/models"
        last_error = "no attempt yet"
        with httpx2.Client(timeout=httpx2.Timeout(2.0, connect=0.5)) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise LlamaServerError(
                        f"llama server exited with code {code} during startup\n"
                        f"--- log {self.log_path} (tail) ---\n{self.log_tail()}"
                    )
                try:
                    resp = client.get(url)
                    if resp.status_code == 200:
                        return
                    last_error = f"HTTP {resp.status_code}"
                except httpx2.TransportError as exc:
                    last_error = repr(exc)
                if time.monotonic() >= deadline:
                    raise LlamaServerError(
                        f"llama server not ready after {self.startup_timeout:.0f}s "
                        f"(last: {last_error})\n--- log {self.log_path} (tail) ---\n"
                        f"{self.log_tail()}"
                    )
                time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``timeout``); idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # uvicorn waits for open (e.g. streaming) connections on graceful shutdown.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                raise LlamaServerError(f"llama server pid {proc.pid} did not die") from exc

    def restart(self) -> LlamaServer:
        self.stop()
        return self.start()

    def log_tail(self, n_bytes: int = 4000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "<no log>"
        return data[-n_bytes:].decode("utf-8", errors="replace")

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"LlamaServer({self.base_url!r}, model_id={self.model_id!r}, {state})"


# -- pytest fixtures -------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight llama GGUF, written once per test session."""
    require_llama_cpp()
    from tests.support.tiny_gguf import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("tiny-model") / "tiny-llama.gguf")


@pytest.fixture(scope="session")
def llama_server(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LlamaServer]:
    """A session-wide running llama.cpp server on the tiny model.

    Don't stop it in tests; use ``llama_server_factory`` for a private instance.
    """
    require_llama_cpp()
    server = LlamaServer(tiny_model_path, log_dir=tmp_path_factory.mktemp("llama-logs"))
    with server:
        yield server


@pytest.fixture
def llama_server_factory(
    tiny_model_path: Path, tmp_path: Path
) -> Iterator[Callable[..., LlamaServer]]:
    """Factory for private (started) servers; every one is stopped at teardown."""
    require_llama_cpp()
    servers: list[LlamaServer] = []

    def make(**kwargs: object) -> LlamaServer:
        kwargs.setdefault("log_dir", tmp_path)
        server = LlamaServer(tiny_model_path, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
