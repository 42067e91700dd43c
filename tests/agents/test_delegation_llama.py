"""A delegation over a folder of files against the real llama.cpp tier.

The tiny random-weight model answers gibberish; what is checked is the path: the
worker reads every file under the allowed root itself (text, Markdown, a PDF and
a DOCX through their real readers), the calls run in parallel on the real local
server and only there, and the answer passes the outbound gate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_localfirst import Router
from llm_localfirst.agents import Worker
from llm_localfirst.audit import AuditFilter
from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import MemoryAuditStore
from tests.agents.conftest import long_text
from tests.agents.documents import write_docx, write_pdf
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.llama


def test_a_folder_of_files_is_read_locally_and_summarised_on_the_real_local_model(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    folder = tmp_path / "contracts"
    folder.mkdir()
    (folder / "acme.md").write_text("# Acme\n" + long_text(6, 6), encoding="utf-8")
    (folder / "globex.txt").write_text(long_text(5, 6), encoding="utf-8")
    write_pdf(folder / "initech.pdf", ["Initech agreement, renewal date 2028-01-15."])
    write_docx(folder / "hooli.docx", ["Hooli agreement, renews 2029-06-30."])
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "local": {
                    "provider": "openai",
                    "base_url": llama_server.base_url,
                    "model": llama_server.model_id,
                    "locality": "local",
                    "context_window": 1024,
                    "timeout": 120,
                    "max_concurrency": 2,
                }
            },
            "default": {"to": ["local"]},
            "worker": {"roots": [str(folder)]},
        }
    )
    store = MemoryAuditStore()
    router = Router(policy, audit=store, probe_ttl=0.001)
    try:
        result = Worker(router).run(
            "List every contract's renewal date",
            paths=["."],
            task_kind="summarize",
            max_tokens=16,
        )
        router.flush()
    finally:
        router.close()
    assert set(result.files) == {"acme.md", "globex.txt", "initech.pdf", "hooli.docx"}
    assert result.chunks > 1 and result.destination == "local"
    assert result.bytes_read == sum(p.stat().st_size for p in folder.iterdir())
    rows = store.query(AuditFilter(limit=1000))
    calls = [r for r in rows if "delegation" not in r.tags and r.outcome == "ok"]
    assert len(calls) >= result.chunks + 1
    assert {(r.locality, r.destination) for r in calls} == {("local", "local")}
    (run,) = [r for r in rows if "delegation" in r.tags]
    assert (run.outcome, run.metadata["files"], run.metadata["delegation"]) == ("ok", "4", "paths")
