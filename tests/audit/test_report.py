"""audit report and verify: counts, the privacy statement, exit codes, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from llm_localfirst.audit import (
    Attempt,
    AuditIntent,
    AuditStore,
    SQLiteAuditStore,
    build_report,
    new_id,
)
from llm_localfirst.cli import main

from .conftest import MakeRecord, ts_at


def _intent(**overrides: object) -> AuditIntent:
    fields: dict[str, object] = dict(
        id=new_id(),
        attempt=1,
        ts=ts_at(5),
        face="proxy",
        endpoint="chat",
        kind="bulk",
        destination="ollama",
        locality="local",
        model="m",
        sensitive=True,
        sensitive_reasons=("header",),
        rule=None,
        prompt_sha256="ab" * 32,
        prompt_chars=10,
    )
    fields.update(overrides)
    return AuditIntent(**fields)  # type: ignore[arg-type]


def _fill(store: AuditStore, make_record: MakeRecord) -> None:
    store.write_many(
        [
            make_record(face="proxy", sensitive=True, sensitive_reasons=("detector:email",)),
            make_record(
                face="proxy", sensitive=True, sensitive_reasons=("detector:email", "header")
            ),
            make_record(face="mcp", destination="haiku", locality="cloud"),
            make_record(
                face="python",
                outcome="refused",
                destination=None,
                locality=None,
                sensitive=True,
                sensitive_reasons=("declared",),
            ),
            make_record(face="proxy", ts=ts_at(-86_400)),  # the day before: outside the window
        ]
    )


SINCE, UNTIL = "2026-11-23", "2026-11-24"


def test_counts_are_by_face_locality_and_reason_within_the_window(
    store: AuditStore, make_record: MakeRecord
) -> None:
    _fill(store, make_record)

    report = build_report(store, since=SINCE, until=UNTIL)

    assert report.counts == {
        ("proxy", "local", "detector:email"): 2,
        ("proxy", "local", "header"): 1,
        ("mcp", "cloud", "none"): 1,
        ("python", "none", "declared"): 1,
    }
    assert (report.total, report.sensitive) == (4, 3)
    assert report.verification.ok
    assert report.sensitive_reached_non_local is False
    data = report.to_dict()
    assert data["sensitive_reached_non_local"] is False and data["chain_verified"] is True
    assert data["statement"].startswith("No sensitive request between 2026-11-23T00:00:00.000Z")


def test_a_sensitive_request_answered_by_the_cloud_is_reported(
    store: AuditStore, make_record: MakeRecord
) -> None:
    _fill(store, make_record)
    leak = make_record(
        sensitive=True, sensitive_reasons=("header",), destination="gpt", locality="cloud"
    )
    store.write_many([leak])

    report = build_report(store, since=SINCE, until=UNTIL)

    assert report.sensitive_reached_non_local is True
    assert report.violations == (leak.id,)
    assert report.statement.startswith("1 sensitive request(s) between")


def test_a_failed_cloud_attempt_of_a_sensitive_request_counts_as_reached(
    store: AuditStore, make_record: MakeRecord
) -> None:
    sent = make_record(
        sensitive=True,
        sensitive_reasons=("header",),
        outcome="error",
        attempts=(
            Attempt("gpt", "http_5xx", 3.0, 500, "boom", locality="cloud"),
            Attempt("ollama", "connect_error", 1.0, locality="local"),
        ),
    )
    store.write_many([sent])

    assert build_report(store).violations == (sent.id,)


def test_intents_without_a_decision_row_are_listed_as_outcome_unknown(
    store: AuditStore, make_record: MakeRecord
) -> None:
    finished = make_record()
    store.write_intents([_intent(id=finished.id), _intent(), _intent(attempt=2)])
    store.write_many([finished])

    report = build_report(store)

    assert len(report.unknown) == 2
    assert {i.id for i in report.unknown} != {finished.id}
    assert report.to_dict()["sent_outcome_unknown_count"] == 2
    assert "outcome unknown" in report.statement
    assert report.sensitive_reached_non_local is False
    store.write_intents([_intent(destination="gpt", locality="cloud")])
    assert build_report(store).sensitive_reached_non_local is True


def test_a_broken_chain_makes_the_report_unprovable(
    tmp_path: Path, make_record: MakeRecord
) -> None:
    store = SQLiteAuditStore(tmp_path / "audit.db")
    _fill(store, make_record)
    raw = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    raw.execute("DROP TRIGGER audit_records_no_delete")
    raw.execute("DELETE FROM audit_records WHERE seq = 2")
    raw.close()

    report = build_report(store, since=SINCE, until=UNTIL)
    store.close()

    assert not report.ok and not report.to_dict()["chain_verified"]
    assert report.statement.startswith("Cannot be proven: the audit chain is broken")


def test_a_malformed_window_is_a_value_error(store: AuditStore) -> None:
    with pytest.raises(ValueError, match="since"):
        build_report(store, since="last tuesday")


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "cli-audit.db"
    monkeypatch.setenv("LF_AUDIT_URL", str(path))
    return path


def test_cli_verify_exits_0_with_a_count_then_8_naming_the_first_bad_row(
    cli_store: Path, make_record: MakeRecord, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SQLiteAuditStore(cli_store)
    store.write_many([make_record() for _ in range(4)])
    chain = store.chain_ids["audit_records"]
    store.close()

    assert main(["audit", "verify"]) == 0
    assert "audit log verified: 4 rows" in capsys.readouterr().out

    raw = sqlite3.connect(cli_store, isolation_level=None)
    raw.execute("DROP TRIGGER audit_records_no_update")
    (victim,) = raw.execute("SELECT id FROM audit_records WHERE seq = 3").fetchone()
    raw.execute("UPDATE audit_records SET locality = 'local', destination = 'x' WHERE seq = 3")
    raw.close()

    assert main(["audit", "verify"]) == 8
    out = capsys.readouterr().out
    assert f"first bad row {victim} in chain {chain}" in out and "edited" in out
    assert main(["audit", "verify", "--json"]) == 8
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert data["first_problem"]["id"] == victim and data["first_problem"]["seq"] == 3


def test_cli_report_states_the_answer_and_exits_4_when_sensitive_data_left(
    cli_store: Path, make_record: MakeRecord, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SQLiteAuditStore(cli_store)
    _fill(store, make_record)

    assert main(["audit", "report", "--since", SINCE, "--until", UNTIL]) == 0
    text = capsys.readouterr().out
    assert text.startswith("No sensitive request between")
    assert "proxy    local     detector:email" in text

    store.write_many(
        [
            make_record(
                sensitive=True, sensitive_reasons=("taint",), destination="gpt", locality="cloud"
            )
        ]
    )
    store.close()
    assert main(["audit", "report", "--since", SINCE, "--until", UNTIL, "--json"]) == 4
    data = json.loads(capsys.readouterr().out)
    assert data["sensitive_reached_non_local"] is True and data["violation_count"] == 1
    assert {"face": "proxy", "locality": "local", "reason": "header", "requests": 1} in data[
        "counts"
    ]


def test_cli_report_exits_8_on_a_broken_chain_and_2_on_a_bad_date(
    cli_store: Path, make_record: MakeRecord, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SQLiteAuditStore(cli_store)
    _fill(store, make_record)
    store.close()
    raw = sqlite3.connect(cli_store, isolation_level=None)
    raw.execute("DROP TRIGGER audit_records_no_delete")
    raw.execute("DELETE FROM audit_records WHERE seq = 5")
    raw.close()

    assert main(["audit", "report", "--json"]) == 8
    assert json.loads(capsys.readouterr().out)["chain_verified"] is False
    assert main(["audit", "report", "--since", "yesterday"]) == 2


@pytest.mark.postgres
def test_cli_verify_and_report_work_on_postgres_with_several_instances(
    postgres_url: str,
    make_record: MakeRecord,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from llm_localfirst.audit import PostgresAuditStore

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LF_AUDIT_URL", postgres_url)
    stores = [PostgresAuditStore(postgres_url) for _ in range(3)]
    for store in stores:
        _fill(store, make_record)
        store.close()

    assert main(["audit", "verify"]) == 0
    assert "15 rows and 0 intents in 3 chain(s)" in capsys.readouterr().out
    assert main(["audit", "report", "--since", SINCE, "--until", UNTIL, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["total"], data["sensitive"]) == (12, 9)
    assert data["sensitive_reached_non_local"] is False
