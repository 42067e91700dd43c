"""Adapters import their framework themselves, and say how to install it when it is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_importing_the_adapter_packages_loads_no_agent_framework() -> None:
    out = run_python(
        "import sys\n"
        "import llm_localfirst.adapters, llm_localfirst.integrations\n"
        "bad = [m for m in ('pydantic_ai', 'langchain_core') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    ("module", "framework", "extra"),
    [
        ("llm_localfirst.adapters.pydantic_ai", "pydantic_ai", "pydantic-ai"),
        ("llm_localfirst.integrations.pydantic_ai", "pydantic_ai", "pydantic-ai"),
        ("llm_localfirst.adapters.langchain", "langchain_core", "langchain"),
    ],
)
def test_a_missing_framework_raises_import_error_with_the_install_hint(
    module: str, framework: str, extra: str
) -> None:
    out = run_python(
        "import sys\n"
        f"sys.modules[{framework!r}] = None  # as if it were not installed\n"
        "try:\n"
        f"    import {module}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported without the framework')\n"
    )
    assert out.returncode == 0, out.stderr
    assert f"pip install 'llm-localfirst[{extra}]'" in out.stdout
