"""The append-only audit log of routing decisions.

Every request handled becomes one `AuditRecord` (decision, destination, attempts,
tokens, timings; a prompt hash and sizes, never prompt or completion text). The
router hands records to an `AuditWriter`, which writes them in batches from a
background thread to an `AuditStore`:

- `SQLiteAuditStore`: the default, one file in the data directory, shared safely
  by the proxy, the MCP server and scripts on one machine;
- `PostgresAuditStore`: one log for several instances (``postgres`` extra);
- `MemoryAuditStore`: for tests.

`open_store` picks one from a URL. Schema changes are the named migrations in
`llm_localfirst.audit.migrations`. Importing this package opens nothing.
"""

from llm_localfirst.audit.export import export_csv, export_json
from llm_localfirst.audit.factory import default_data_dir, open_store
from llm_localfirst.audit.memory import MemoryAuditStore
from llm_localfirst.audit.postgres import PostgresAuditStore
from llm_localfirst.audit.record import Attempt, AuditRecord, new_id, utc_now_iso
from llm_localfirst.audit.sqlite import SQLiteAuditStore
from llm_localfirst.audit.store import AuditFilter, AuditStore, TokenTotals
from llm_localfirst.audit.writer import AuditWriter, WriterStats

__all__ = [
    "Attempt",
    "AuditFilter",
    "AuditRecord",
    "AuditStore",
    "AuditWriter",
    "MemoryAuditStore",
    "PostgresAuditStore",
    "SQLiteAuditStore",
    "TokenTotals",
    "WriterStats",
    "default_data_dir",
    "export_csv",
    "export_json",
    "new_id",
    "open_store",
    "utc_now_iso",
]
