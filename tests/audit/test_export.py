"""CSV and JSON Lines export, read back."""

from __future__ import annotations

import csv
import io
import json

from llm_localfirst.audit import AuditRecord, export_csv, export_json
from llm_localfirst.audit.record import COLUMNS

from .conftest import MakeRecord


def test_csv_export_reads_back_as_the_flat_rows(
    full_record: AuditRecord, make_record: MakeRecord
) -> None:
    records = [full_record, make_record(destination=None, tokens_in=None)]
    buffer = io.StringIO(newline="")

    assert export_csv(records, buffer) == 2

    reader = csv.DictReader(io.StringIO(buffer.getvalue(), newline=""))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    rows = list(reader)
    expected = [{k: "" if v is None else str(v) for k, v in r.to_row().items()} for r in records]
    assert rows == expected
    assert json.loads(rows[0]["metadata_json"]) == dict(full_record.metadata)


def test_csv_export_defuses_cells_a_spreadsheet_would_run_as_formulas(
    make_record: MakeRecord,
) -> None:
    record = make_record(
        request_model='=HYPERLINK("http://x")', error_message="@SUM(A1)", rule="+1", arm="-1"
    )
    safe, raw = io.StringIO(), io.StringIO()

    export_csv([record], safe)
    export_csv([record], raw, escape_formulas=False)

    (row,) = csv.DictReader(io.StringIO(safe.getvalue()))
    assert row["request_model"] == '\'=HYPERLINK("http://x")'
    assert row["error_message"] == "'@SUM(A1)"
    assert (row["rule"], row["arm"]) == ("'+1", "'-1")
    assert row["latency_ms"] == "12.5"  # numbers are left alone
    (raw_row,) = csv.DictReader(io.StringIO(raw.getvalue()))
    assert raw_row["request_model"] == record.request_model


def test_json_export_is_one_object_per_line_and_reads_back_exactly(
    full_record: AuditRecord, make_record: MakeRecord
) -> None:
    records = [full_record, make_record(), make_record(attempts=())]
    buffer = io.StringIO()

    assert export_json(records, buffer) == 3

    lines = buffer.getvalue().splitlines()
    assert len(lines) == 3
    assert [AuditRecord.from_dict(json.loads(line)) for line in lines] == records


def test_exporting_nothing_writes_only_the_csv_header_and_no_json() -> None:
    csv_out, json_out = io.StringIO(), io.StringIO()

    assert export_csv([], csv_out) == 0
    assert export_json([], json_out) == 0
    assert csv_out.getvalue().strip() == ",".join(COLUMNS)
    assert json_out.getvalue() == ""
