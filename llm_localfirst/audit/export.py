"""Export audit records as CSV (for spreadsheets) or JSON Lines (for programs).

This module owns the two offline formats. CSV is the flat row form (`COLUMNS`,
structured fields as ``*_json`` cells, ``None`` as an empty cell). JSON export is
JSON Lines: one `AuditRecord.to_dict` object per line, so it streams, appends and
reads back with `AuditRecord.from_dict`. It must never add prompt text, and it
writes only to the file object it is given.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import TextIO

from llm_localfirst.audit.record import COLUMNS, AuditRecord

__all__ = ["export_csv", "export_json"]

# A cell starting with one of these is a formula to a spreadsheet; tags, metadata and
# error text can come from request headers, so a crafted value could run on open.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_csv(
    records: Iterable[AuditRecord], file: TextIO, *, escape_formulas: bool = True
) -> int:
    """Write a header row and one row per record to ``file`` (open it with ``newline=""``).

    Args:
        records: What to export, in the order to write.
        file: A text file or stream.
        escape_formulas: Prefix text cells that a spreadsheet would run as a formula
            with ``'`` (the OWASP advice against CSV injection). Turn it off when
            the file is only read by programs.

    Returns:
        The number of records written.
    """
    writer = csv.writer(file)
    writer.writerow(COLUMNS)
    count = 0
    for record in records:
        writer.writerow(_cell(v, escape_formulas) for v in record.to_row().values())
        count += 1
    return count


def export_json(records: Iterable[AuditRecord], file: TextIO) -> int:
    """Write one JSON object per line (JSON Lines) to ``file``.

    Each line is `AuditRecord.to_dict` output and reads back with
    ``AuditRecord.from_dict(json.loads(line))``.

    Returns:
        The number of records written.
    """
    count = 0
    for record in records:
        file.write(json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":")))
        file.write("\n")
        count += 1
    return count


def _cell(value: object, escape_formulas: bool) -> object:
    if value is None:
        return ""
    if escape_formulas and isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
