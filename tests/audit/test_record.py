"""The audit record, its ids and timestamps, and its row and dict forms."""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from llm_localfirst.audit import Attempt, AuditRecord, new_id, utc_now_iso
from llm_localfirst.audit.record import COLUMNS, normalize_iso

from .conftest import MakeRecord


def test_new_id_is_a_uuid_version_7_with_the_current_unix_milliseconds_in_front() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000

    parsed = uuid.UUID(value)
    assert str(parsed) == value
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after + 1  # +1: the counter may borrow a millisecond


def test_ids_made_in_one_process_sort_in_creation_order_and_never_repeat() -> None:
    ids = [new_id() for _ in range(20_000)]

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_utc_now_iso_is_strict_iso_8601_utc_with_milliseconds() -> None:
    value = utc_now_iso()

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - moment).total_seconds()) < 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23", "2026-11-23T00:00:00.000Z"),
        ("2026-11-23T03:22:35Z", "2026-11-23T03:22:35.000Z"),
        ("2026-11-23T05:22:35.123456+02:00", "2026-11-23T03:22:35.123Z"),
    ],
)
def test_filter_times_are_normalised_to_the_record_format(text: str, expected: str) -> None:
    assert normalize_iso(text, name="since") == expected


def test_a_date_time_without_an_offset_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match=r"since must carry a UTC offset"):
        normalize_iso("2026-11-23T03:22:35", name="since")


def test_the_row_form_has_exactly_the_columns_in_order(full_record: AuditRecord) -> None:
    row = full_record.to_row()

    assert tuple(row) == COLUMNS
    assert row["sensitive"] == 1
    assert row["fell_back"] == 1
    assert json.loads(str(row["attempts_json"]))[1] == {
        "destination": "vllm-gpu",
        "outcome": "http_5xx",
        "latency_ms": 830.5,
        "status": 503,
        "error": "Service Unavailable",
        "locality": None,
    }


def test_every_field_survives_the_row_form(full_record: AuditRecord) -> None:
    assert AuditRecord.from_row(full_record.to_row()) == full_record


def test_every_field_survives_the_dict_form_through_json(full_record: AuditRecord) -> None:
    data = json.loads(json.dumps(full_record.to_dict()))

    assert data["attempts"][0]["outcome"] == "connect_error"
    assert data["sensitive"] is True
    assert AuditRecord.from_dict(data) == full_record


def test_optional_fields_left_empty_survive_both_forms(make_record: MakeRecord) -> None:
    record = make_record(
        destination=None, locality=None, model=None, tokens_in=None, tokens_out=None
    )

    assert AuditRecord.from_row(record.to_row()) == record
    assert AuditRecord.from_dict(record.to_dict()) == record


def test_a_record_copies_its_metadata_so_later_caller_mutation_cannot_change_it(
    make_record: MakeRecord,
) -> None:
    metadata = {"tenant": "acme"}
    tags = ["a"]
    record = make_record(metadata=metadata, tags=tags)

    metadata["tenant"] = "evil"
    tags.append("b")

    assert record.metadata == {"tenant": "acme"}
    assert record.tags == ("a",)
    assert hash(record) == hash(replace(record))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ts", "2026-11-23 03:22:35", r"AuditRecord.ts must look like"),
        ("ts", "2026-11-23T03:22:35Z", r"AuditRecord.ts must look like"),
        ("face", "browser", r"AuditRecord.face must be one of \['cli', 'mcp'"),
        ("endpoint", "nope", r"AuditRecord.endpoint must be one of"),
        ("outcome", "maybe", r"AuditRecord.outcome must be one of"),
    ],
)
def test_a_record_with_an_invalid_field_is_refused_with_the_field_named(
    make_record: MakeRecord, field: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_record(**{field: value})


def test_an_attempt_with_an_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Attempt.outcome must be one of"):
        Attempt("ollama", "exploded", 1.0)


def test_a_row_with_broken_json_is_refused_with_the_column_named(
    make_record: MakeRecord,
) -> None:
    row = make_record().to_row()
    row["attempts_json"] = "[{"

    with pytest.raises(ValueError, match=r"column attempts_json holds invalid JSON"):
        AuditRecord.from_row(row)


def test_a_row_missing_a_column_or_with_a_wrong_type_is_refused(
    make_record: MakeRecord,
) -> None:
    row = make_record().to_row()
    del row["kind"]
    with pytest.raises(ValueError, match=r"field 'kind' is missing"):
        AuditRecord.from_row(row)

    row = make_record().to_row()
    row["prompt_chars"] = "100"
    with pytest.raises(ValueError, match=r"field 'prompt_chars' must be an integer"):
        AuditRecord.from_row(row)


def test_a_record_has_no_field_for_prompt_or_completion_text() -> None:
    names = set(AuditRecord.__dataclass_fields__)

    assert not names & {"prompt", "completion", "messages", "text", "response", "source"}
    assert {"prompt_sha256", "prompt_chars", "completion_chars"} <= names
