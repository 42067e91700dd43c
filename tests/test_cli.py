"""cli.py: the commands, their output and the exit codes scripts rely on."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llm_localfirst.cli import main
from llm_localfirst.testing import FakeUpstream

GOOD = """
version: 1
destinations:
  local: {provider: openai, base_url: "BASE", model: fake-local, locality: local}
  haiku: {provider: anthropic, model: claude-haiku-4-5, locality: cloud}
rules:
  - {name: reasoning goes to the cloud, when: {kind: reason}, to: [haiku]}
  - name: chat A/B
    when: {tags: [chat]}
    to: [{destination: local, weight: 50}, {destination: haiku, weight: 50}]
default: {to: [local], fallback: [haiku]}
"""


@pytest.fixture
def policy_file(tmp_path: Path, fake_local: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD.replace("BASE", fake_local.base_url))
    monkeypatch.setenv("LF_POLICY", str(path))
    monkeypatch.setenv("LF_PROBE_TTL", "0.001")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_route_prints_the_decision_as_json(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "route", "summarise this", "--kind", "bulk", "--json")
    data = json.loads(out)
    assert code == 0
    assert (data["target"], data["destination"], data["rule"]) == ("local", "local", "default")
    assert data["audit_id"]


def test_route_exits_3_when_a_sensitive_request_would_fail_closed(
    policy_file: Path, fake_local: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_local.stop()
    code, _, err = run(capsys, "route", "redact this", "--sensitive")
    assert code == 3
    assert "LocalUnavailable" in err and "failing closed" in err


def test_route_exit_codes_for_privacy_violation_and_unknown_models(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "route", "x", "--sensitive", "--model", "haiku")[0] == 4
    code, _, err = run(capsys, "route", "x", "--model", "http://10.0.0.1/v1")
    assert code == 5 and "not on the allowlist" in err


def test_complete_runs_on_the_local_model(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "complete", "hello there", "--kind", "bulk", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["text"] == "echo: hello there" and data["decision"]["target"] == "local"


def test_complete_streams(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "complete", "stream please", "--stream")
    assert code == 0 and out.strip() == "echo: stream please"


def test_policy_check_accepts_a_good_file_and_names_problems_in_a_bad_one(
    policy_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "policy", "check", str(policy_file))
    assert code == 0 and "valid, 2 destinations, 2 rules" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        GOOD.replace("weight: 50}, {", "weight: 0}, {").replace("weight: 50}]", "weight: 0}]")
    )
    code, _, err = run(capsys, "policy", "check", str(bad))
    assert code == 7
    assert str(bad) in err and "rules[1] 'chat A/B'" in err and "sum to 0" in err


def test_policy_explain_names_rule_arm_and_reason(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "policy",
        "explain",
        str(policy_file),
        "--tag",
        "chat",
        "--ab-key",
        "user-7",
        "--json",
    )
    data = json.loads(out)
    assert code == 0 and data["rule"] == "chat A/B" and data["arm"] in ("local", "haiku")
    again = json.loads(
        run(
            capsys,
            "policy",
            "explain",
            str(policy_file),
            "--tag",
            "chat",
            "--ab-key",
            "user-7",
            "--json",
        )[1]
    )
    assert again["arm"] == data["arm"]
    code, out, _ = run(capsys, "policy", "explain", str(policy_file), "--down", "local")
    assert "fell back" in out and "haiku" in out


def test_audit_tail_show_and_export(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "route", "one", "--json")
    audit_id = json.loads(run(capsys, "route", "two", "--kind", "reason", "--json")[1])["audit_id"]
    code, out, _ = run(capsys, "audit", "tail")
    assert code == 0 and len(out.strip().splitlines()) == 2 and "dry_run" in out
    code, out, _ = run(capsys, "audit", "show", audit_id)
    assert json.loads(out)["destination"] == "haiku"
    code, out, _ = run(capsys, "audit", "export", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 2 and {r["face"] for r in rows} == {"cli"}
    assert run(capsys, "audit", "show", "no-such-id")[0] == 1


def test_doctor_reports_destinations_health_and_the_audit_location(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "doctor", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["destinations"]["local"]["up"] is True
    assert data["destinations"]["haiku"]["api_key"] == "ANTHROPIC_API_KEY NOT set"
    assert data["sensitive_requests"].startswith("served locally")
    assert data["audit_log"].endswith("audit.db")


def test_doctor_with_no_model_installed_says_sensitive_requests_fail_closed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LF_LOCAL_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens on 9
    code, out, _ = run(capsys, "doctor")
    assert code == 0
    assert "FAIL CLOSED" in out and "DOWN" in out


def test_invalid_settings_exit_7_with_the_variable_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LF_SENSITIVE_FAIL_CLOSED", "false")
    code, _, err = run(capsys, "route", "x")
    assert code == 7 and "LF_SENSITIVE_FAIL_CLOSED" in err


def test_the_console_script_runs_as_a_process(policy_file: Path) -> None:
    exe = Path(sys.executable).parent / "llm-localfirst"
    out = subprocess.run(
        [str(exe), "route", "hi", "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["target"] == "local"


def test_policy_is_accepted_after_the_command_too(
    tmp_path: Path, fake_local: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(GOOD.replace("BASE", fake_local.base_url))
    code, out, _ = run(capsys, "route", "hi", "--policy", str(path), "--json")
    assert code == 0 and json.loads(out)["model"] == "fake-local"
    code, out, _ = run(capsys, "--policy", str(path), "route", "hi", "--json")
    assert code == 0 and json.loads(out)["model"] == "fake-local"


# --------------------------------------------------------------------------- first hour


def write_rows(count: int, start: datetime, step: timedelta = timedelta(seconds=1)) -> list[str]:
    """Append ``count`` rows, one each ``step`` from ``start``, to the store LF_* points at."""
    from llm_localfirst.audit import AuditRecord, new_id, open_store
    from llm_localfirst.audit.record import format_iso
    from llm_localfirst.config import Settings

    settings = Settings.load()
    store = open_store(settings.audit_url, data_dir=settings.resolved_data_dir)
    records = [
        AuditRecord(
            id=new_id(),
            ts=format_iso(start + i * step),
            face="cli",
            endpoint="route",
            outcome="dry_run",
            kind="bulk",
            request_model="auto",
            sensitive=False,
            sensitive_reasons=(),
            rule="default",
            arm=None,
            destination="local",
            locality="local",
            model="m",
            fell_back=False,
            attempts=(),
            error_class=None,
            error_message=None,
            tokens_in=0,
            tokens_out=0,
            latency_ms=1.0,
            prompt_sha256=None,
            prompt_chars=1,
            completion_chars=0,
            tags=(),
            metadata={},
        )
        for i in range(count)
    ]
    try:
        store.write_many(records)
    finally:
        store.close()
    return [r.id for r in records]


START = datetime(2026, 1, 1, tzinfo=UTC)


def test_audit_export_streams_every_row_not_just_the_first_thousand(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = write_rows(2345, START)
    code, out, _ = run(capsys, "audit", "export", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert len(rows) == 2345 and {r["id"] for r in rows} == set(ids)
    assert [r["id"] for r in rows] == ids[::-1]  # newest first, each once


def test_audit_export_pages_by_time_and_keeps_rows_that_share_a_millisecond(
    capsys: pytest.CaptureFixture[str],
) -> None:
    older = write_rows(700, START - timedelta(hours=1))
    same = write_rows(2500, START, step=timedelta(0))  # three pages' worth in one millisecond
    newer = write_rows(300, START + timedelta(hours=1))
    code, out, _ = run(capsys, "audit", "export", "--json")
    exported = [json.loads(line)["id"] for line in out.splitlines()]
    assert code == 0 and len(exported) == len(set(exported)) == 3500
    assert exported == newer[::-1] + sorted(same, reverse=True) + older[::-1]


def test_audit_export_takes_since_until_and_the_filters_of_tail(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = write_rows(1500, START)
    code, out, _ = run(
        capsys,
        "audit",
        "export",
        "--json",
        "--since",
        "2026-01-01T00:01:40Z",
        "--until",
        "2026-01-01T00:21:40Z",
        "--face",
        "cli",
        "--outcome",
        "dry_run",
        "--destination",
        "local",
    )
    exported = [json.loads(line)["id"] for line in out.splitlines()]
    assert code == 0 and exported == ids[100:1300][::-1]
    assert run(capsys, "audit", "export", "--csv", "--face", "proxy")[1].count("\n") == 1
    code, out, _ = run(capsys, "audit", "export", "--json", "-n", "5")
    assert [json.loads(line)["id"] for line in out.splitlines()] == ids[-5:][::-1]
    code, out, _ = run(capsys, "audit", "tail", "--json", "--until", "2026-01-01T00:00:03Z")
    assert [r["id"] for r in json.loads(out)] == ids[:3][::-1]


def test_audit_tail_into_a_pipe_closed_early_exits_0_without_a_traceback() -> None:
    write_rows(1000, START)  # ~150 KB of output: more than a pipe holds
    result = subprocess.run(
        [
            "bash",
            "-c",
            'set -o pipefail; "$0" -m llm_localfirst audit tail -n 1000 | head -1',
            sys.executable,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.count("\n") == 1


def test_python_dash_m_runs_the_command_line(policy_file: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "llm_localfirst",
            "route",
            "summarise this",
            "--kind",
            "bulk",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["destination"] == "local"


def test_version_names_this_project_and_is_not_the_registry_0_2_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import llm_localfirst

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    out = capsys.readouterr().out
    assert stopped.value.code == 0
    assert llm_localfirst.__version__ != "0.2.0"
    assert out.startswith(f"llm-localfirst {llm_localfirst.__version__} (local-first router")
    assert str(Path(llm_localfirst.__file__).resolve().parent) in out


def test_a_probe_ttl_of_0_probes_before_every_decision(
    policy_file: Path,
    fake_local: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LF_PROBE_TTL", "0")
    from llm_localfirst import Router

    with Router.from_env() as router:
        assert router.health.ttl == 0
        for _ in range(3):
            router.decide(kind="bulk")
    assert [r.path for r in fake_local.requests].count("/v1/models") == 3


def test_a_negative_probe_ttl_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from llm_localfirst import ConfigError, Settings

    with pytest.raises(ConfigError, match="LF_PROBE_TTL"):
        Settings.load(environ={"LF_PROBE_TTL": "-1"}, env_file=None)
    monkeypatch.setenv("LF_PROBE_TTL", "-5")
    code, _, err = run(capsys, "route", "x")
    assert code == 7 and "LF_PROBE_TTL" in err


def test_a_cloud_destination_without_a_key_fails_at_once_without_importing_its_sdk(
    tmp_path: Path,
) -> None:
    script = (
        "import sys\nfrom llm_localfirst.cli import main\n"
        "code = main(['complete', 'Find the flaw in this proof', '--kind', 'reason'])\n"
        "print(code, 'anthropic' in sys.modules, 'openai' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))}
    env.update(HOME=str(tmp_path), LF_LOCAL_BASE_URL="http://127.0.0.1:9/v1")
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.stdout.split() == ["6", "False", "False"], result.stderr
    assert "not configured: set ANTHROPIC_API_KEY" in result.stderr
    assert "the local model 'local' (unreachable" in result.stderr
    assert "was skipped as down: start it" in result.stderr
