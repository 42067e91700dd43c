"""The public API: ``__all__`` matches the namespace, and importing does no work."""

from __future__ import annotations

import subprocess
import sys

import llm_localfirst


def test_all_lists_exactly_the_public_names_sorted() -> None:
    public = {n for n in dir(llm_localfirst) if not n.startswith("_")} | {"Worker", "__version__"}
    modules = {
        "agents",
        "audit",
        "cli",
        "config",
        "doctor",
        "errors",
        "health",
        "policy",
        "providers",
        "registry",
        "request",
        "router",
        "sensitivity",
        "testing",
        "server",
        "adapters",
        "integrations",
        "annotations",
        "stream",
        "budget",
        "budget_gate",
        "lifecycle",
        "assessment",
        "dispatch",
    }
    assert set(llm_localfirst.__all__) == public - modules
    assert list(llm_localfirst.__all__) == sorted(llm_localfirst.__all__)


def test_every_exported_error_derives_from_local_first_error() -> None:
    for name in llm_localfirst.__all__:
        obj = getattr(llm_localfirst, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, llm_localfirst.LocalFirstError), name


FORBIDDEN = [
    "openai",
    "anthropic",
    "mcp",
    "pydantic_ai",
    "langchain_core",
    "starlette",
    "uvicorn",
    "prometheus_client",
    "psycopg",
    "httpx2",
    "phonenumbers",
    "stdnum",
]


def test_importing_the_package_and_deciding_loads_no_sdk_framework_or_network_client() -> None:
    code = (
        "import sys, os\n"
        "os.environ['LF_DATA_DIR'] = os.environ.get('TMPDIR', '/tmp')\n"
        "import llm_localfirst\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "assert not bad, ('at import', bad)\n"
        "from llm_localfirst import Router, Kind\n"
        "from llm_localfirst.policy import decide\n"
        "from llm_localfirst.config import Settings, policy_from_settings\n"
        "from llm_localfirst.request import Request\n"
        "p = policy_from_settings(Settings.load())\n"
        "print(decide(p, Request.build(None, allow_empty=True, kind=Kind.BULK)).target)\n"
        f"bad = [m for m in {FORBIDDEN[:-3]!r} if m in sys.modules]\n"
        "assert not bad, ('after decide', bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "local"


def test_worker_is_importable_from_the_top_level_lazily() -> None:
    from llm_localfirst.agents.worker import Worker

    assert llm_localfirst.Worker is Worker
