"""Every README snippet runs as printed (the "Delegation" section has its own test).

- Python blocks are executed as written, offline: ``LF_POLICY`` names a policy over
  loopback ``FakeUpstream`` fakes, so ``Router.from_env()`` routes to them; the proxy
  snippet talks to a live proxy (only its port differs from the README's).
- Shell blocks made only of commands that are safe here (the CLI's read-only and
  model commands against the fakes, ``echo``) run in ``bash -euo pipefail`` with this
  virtualenv's ``bin`` first on ``PATH``; every other command is checked: the CLI
  parses it, the scripts and files it names exist, the extras it installs exist.
- JSON and YAML blocks parse; a policy validates; Claude Desktop configs name the
  server by an absolute path.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_localfirst import Router, Settings
from llm_localfirst.cli import build_parser
from llm_localfirst.policy import policy_from_data
from llm_localfirst.server.proxy import create_app
from llm_localfirst.testing import FakeUpstream, offline_policy
from tests.server.conftest import ServerThread

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Covered by tests/test_readme_delegation.py.
OWN_TEST = ("## Delegation",)
BIN = Path(sys.executable).parent
#: CLI commands that only read, decide, or call the (fake) model: safe to run here.
SAFE_CLI = {"doctor", "route", "complete", "audit", "policy", "budget"}
#: Commands a reader runs that this test only checks (installs, servers, other tools).
CHECKED_ONLY = {
    "pip",
    "pipx",
    "uv",
    "ollama",
    "python3",
    "source",
    "bash",
    "python",
    ".venv/bin/python",
    "git",
    "curl",
    "export",
    "cd",
    "kill",
    "which",
}


def blocks() -> list[tuple[str, str, str]]:
    """``(h2 section, language, code)`` of every fenced block, in order."""
    out: list[tuple[str, str, str]] = []
    section = ""
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line
        fence = re.match(r"^```(\w*)$", line)
        if fence:
            body: list[str] = []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            out.append((section, fence.group(1), "\n".join(body) + "\n"))
        i += 1
    return [b for b in out if not b[0].startswith(OWN_TEST)]


def of(*languages: str) -> list[tuple[str, str]]:
    return [(section, code) for section, lang, code in blocks() if lang in languages]


PYTHON = [code for _, code in of("python")]
SHELL = [code for _, code in of("bash", "sh", "console")]


def commands(block: str) -> Iterator[list[str]]:
    """Each command of a shell block as words, comments removed, pipelines split."""
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        current: list[str] = []
        for word in [*words, "|"]:
            if word in ("|", "&&", ">", ";"):
                if current:
                    yield current
                current = []
                if word == ">":
                    current = [">"]  # the redirect target is not a command
            else:
                current.append(word)


def cli_args(words: list[str]) -> list[str] | None:
    """The CLI arguments of a ``llm-localfirst`` / ``python -m llm_localfirst`` command."""
    if Path(words[0]).name == "llm-localfirst":
        return words[1:]
    if words[:3] == ["python", "-m", "llm_localfirst"] or (
        Path(words[0]).name == "python" and words[1:3] == ["-m", "llm_localfirst"]
    ):
        return words[3:]
    return None


def runnable(block: str) -> bool:
    for words in commands(block):
        if words[0] in (">", "echo", "head"):
            continue
        args = cli_args(words)
        if args is None or Path(words[0]).parts[:1] == (".venv",):
            return False
        safe = args and (
            args[0] in SAFE_CLI or args[:2] == ["mcp", "--print-config"] or args == ["--version"]
        )
        if not safe:
            return False
    return True


@pytest.fixture
def snippet_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
) -> Path:
    """LF_POLICY over the fakes (bulk and sensitive -> local, reason -> cloud)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(offline_policy(fake_local, fake_cloud).redacted()), encoding="utf-8"
    )
    monkeypatch.setenv("LF_POLICY", str(policy))
    monkeypatch.setenv("LF_PROBE_TTL", "0")
    return policy


def run_block(code: str, name: str) -> tuple[dict[str, Any], str]:
    namespace: dict[str, Any] = {"__name__": name}
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"README.md, {name}", "exec"), namespace)
    finally:
        router = namespace.get("router")
        if isinstance(router, Router):
            router.close()
    return namespace, printed.getvalue()


def the(marker: str) -> str:
    (code,) = [c for c in PYTHON if marker in c]
    return code


# --------------------------------------------------------------------------- python


def test_every_python_block_has_a_test_here() -> None:
    assert len(PYTHON) == 3
    assert all(
        any(m in code for m in ("customer_record =", "long_text =", "OpenAI(")) for code in PYTHON
    )


def test_the_privacy_snippet_runs_locally_and_fails_closed_when_local_is_down(
    snippet_env: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    code = the("customer_record =")
    namespace, printed = run_block(code, "privacy")
    assert printed.startswith("local ") and namespace["out"].decision.target == "local"
    assert len(fake_local.model_calls()) == 1
    fake_local.stop()
    _, printed = run_block(code, "privacy, local down")
    assert printed == "the local model is down: nothing was sent\n"
    assert fake_cloud.requests == []


def test_the_quickstart_snippet_decides_and_runs_bulk_work_locally(
    snippet_env: Path, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    _, printed = run_block(the("long_text ="), "quickstart")
    lines = printed.splitlines()
    assert lines[0].startswith("local:local")
    assert lines[1].startswith("cloud:cloud")
    assert lines[2].startswith("local:local") and "sensitive" in lines[2]
    assert lines[3].startswith("echo: Summarize this in one sentence.")
    assert len(fake_local.model_calls()) == 1 and fake_cloud.model_calls() == []


def test_the_proxy_snippet_gets_an_answer_through_the_proxy(
    snippet_env: Path, fake_local: FakeUpstream
) -> None:
    code = the("OpenAI(")
    assert 'base_url="http://127.0.0.1:8787/v1"' in code
    router = Router.from_env()
    server = ServerThread(create_app(router, Settings.load())).start()
    try:
        _, printed = run_block(code.replace("127.0.0.1:8787", f"127.0.0.1:{server.port}"), "proxy")
    finally:
        server.stop()
        router.close()
    assert printed == "echo: Say hello in five words.\n"
    assert len(fake_local.model_calls()) == 1


# --------------------------------------------------------------------------- shell


def test_the_command_line_blocks_run_as_printed(snippet_env: Path, tmp_path: Path) -> None:
    blocks_run = [b for b in SHELL if runnable(b)]
    assert any("audit tail | head -1" in b for b in blocks_run)
    work = tmp_path / "work"
    (work / "examples").mkdir(parents=True)
    (work / "examples" / "policy.yaml").write_bytes((ROOT / "examples/policy.yaml").read_bytes())
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for block in blocks_run:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr


def test_every_other_command_parses_and_names_what_exists() -> None:
    parser = build_parser()
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    for block in SHELL:
        for words in commands(block):
            if words[0] in (">", "echo", "head"):
                continue
            args = cli_args(words)
            if args is not None:
                code = 0
                try:
                    parser.parse_args(args)
                except SystemExit as stop:  # --version exits 0, a bad command 2
                    code = stop.code
                assert code == 0, words
                continue
            assert words[0] in CHECKED_ONLY, f"unknown command in README: {words}"
            for word in words[1:]:
                if re.fullmatch(r"(scripts|examples|bench|tests)/[\w./-]+", word):
                    assert (ROOT / word).exists(), word
                for extra in re.findall(r"\.\[([\w,-]+)\]", word):
                    assert set(extra.split(",")) <= extras, word


def test_no_command_pipes_the_cli_into_itself() -> None:
    for block in SHELL:
        for line in block.splitlines():
            code = line.split("#")[0]
            if "|" in code:
                after = code.split("|", 1)[1].split()
                assert after and after[0] in ("head", "tail", "grep", "jq", "less"), line


# --------------------------------------------------------------------------- data


def test_json_blocks_parse_and_claude_configs_name_the_server_by_an_absolute_path() -> None:
    example = json.loads((ROOT / "claude_desktop_config.example.json").read_text())
    configs = [json.loads(code) for _, code in of("json")]
    desktop = [c for c in configs if "mcpServers" in c]
    assert desktop[0] == example
    for config in desktop:
        (entry,) = config["mcpServers"].values()
        assert entry["command"].startswith("/"), entry
        assert "mcp" in entry["args"]


def test_yaml_blocks_parse_and_the_policy_reference_is_the_example_file() -> None:
    docs = [(code, yaml.safe_load(code)) for _, code in of("yaml")]
    policies = [(code, d) for code, d in docs if "version" in d]
    ((code, data),) = policies
    assert code == (ROOT / "examples" / "policy.yaml").read_text(encoding="utf-8")
    policy_from_data(data, source="README")
    fragments = [d for _, d in docs if "version" not in d]
    assert {next(iter(d)) for d in fragments} == {"sensitivity", "budgets"}
