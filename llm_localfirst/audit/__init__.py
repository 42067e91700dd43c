"""The append-only audit log of routing decisions.

Every request handled becomes one `AuditRecord` (decision, destination, attempts,
tokens, timings; a prompt hash and sizes, never prompt or completion text). The
router hands records to an `AuditWriter`, which writes them in batches from a
background thread to an `AuditStore`:

- `SQLiteAuditStore`: the default, one file in the data directory, shared safely
  by the proxy, the MCP server and scripts on one machine;
- `PostgresAuditStore`: one log for several instances (``postgres`` extra);
- `MemoryAuditStore`: for tests.

Rows are hash-chained, one chain per store instance (`llm_localfirst.audit.chain`);
`verify_store` checks every chain and `build_report` states, from a verified
chain, whether any sensitive request reached a non-local destination. Under
``durability="intent"`` the writer commits an `AuditIntent` before each upstream
attempt. Stores also keep the shared taint memory (`AuditStore.taint_add`,
`AuditStore.taint_match`).

`open_store` picks one from a URL. Schema changes are the named migrations in
`llm_localfirst.audit.migrations`. Importing this package opens nothing.
"""

from llm_localfirst.audit.chain import ChainProblem, VerifyResult
from llm_localfirst.audit.export import export_csv, export_json
from llm_localfirst.audit.factory import default_data_dir, open_store
from llm_localfirst.audit.intent import AuditIntent
from llm_localfirst.audit.memory import MemoryAuditStore
from llm_localfirst.audit.postgres import PostgresAuditStore
from llm_localfirst.audit.record import Attempt, AuditRecord, new_id, utc_now_iso
from llm_localfirst.audit.report import AuditReport, build_report
from llm_localfirst.audit.sqlite import SQLiteAuditStore
from llm_localfirst.audit.store import AuditFilter, AuditStore, TokenTotals
from llm_localfirst.audit.verify import verify_store
from llm_localfirst.audit.writer import DURABILITY_MODES, AuditWriter, WriterStats

__all__ = [
    "DURABILITY_MODES",
    "Attempt",
    "AuditFilter",
    "AuditIntent",
    "AuditRecord",
    "AuditReport",
    "AuditStore",
    "AuditWriter",
    "ChainProblem",
    "MemoryAuditStore",
    "PostgresAuditStore",
    "SQLiteAuditStore",
    "TokenTotals",
    "VerifyResult",
    "WriterStats",
    "build_report",
    "default_data_dir",
    "export_csv",
    "export_json",
    "new_id",
    "open_store",
    "utc_now_iso",
    "verify_store",
]
