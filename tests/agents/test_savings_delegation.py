"""Honest savings: what a director never had to read or write, source versus paths.

With ``paths`` (or ``documents``) the whole source counts as cloud tokens saved; with
inline ``source`` only what the worker produced. ``savings_report`` (and so
``audit://savings`` and ``/admin/savings``) shows both.
"""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from llm_localfirst import Router, Settings
from llm_localfirst.agents import Worker, savings_report
from llm_localfirst.agents.chunking import estimate_tokens
from llm_localfirst.policy import policy_from_data
from llm_localfirst.server.proxy.app import create_app
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy

ADMIN = "admin-token-for-tests-0123456789"


def test_paths_count_the_whole_source_and_inline_source_only_the_answer(
    tmp_path: Path,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
) -> None:
    (tmp_path / "report.md").write_text("Quarterly figures. " * 400, encoding="utf-8")
    fake_local.reply = "Revenue grew."
    data = offline_policy(fake_local, fake_cloud).model_dump()
    data["worker"] = {"roots": [str(tmp_path)]}
    settings = Settings(admin_token=ADMIN)
    router = Router(policy_from_data(data), audit=memory_audit, settings=settings)
    try:
        by_path = Worker(router).run("Summarize", paths=["report.md"])
        inline = Worker(router).run("Summarize", source="Quarterly figures. " * 10)
        report = savings_report(router)
        app = create_app(router, settings, own_router=False, host="127.0.0.1", port=8787)
        with TestClient(app, base_url="http://127.0.0.1:8787") as client:
            admin = client.get(
                "/admin/savings", headers={"authorization": f"Bearer {ADMIN}"}
            ).json()
    finally:
        router.close()
    d = report.delegation
    assert (d.by_reference, d.inline, d.files) == (1, 1, 1)
    assert d.bytes_read == by_path.bytes_read == (tmp_path / "report.md").stat().st_size
    assert d.source_tokens > 1500  # the whole file (plus its label), never seen by the director
    assert d.answer_tokens == estimate_tokens(inline.text)  # only what the worker produced
    assert d.tokens_saved == d.source_tokens + d.answer_tokens
    ledger = report.to_dict()["delegation"]
    assert ledger["cloud_tokens_saved"] == d.tokens_saved
    assert ledger["by_reference"]["source_tokens_saved"] == d.source_tokens
    assert ledger["inline"]["answer_tokens_saved"] == d.answer_tokens
    assert ledger["cloud_tokens_saved_usd"] == round(d.tokens_saved * 1.0 / 1e6, 6)
    assert admin["delegation"] == ledger
    # Every model call counts once; the rows describing whole delegations do not.
    assert report.requests == len(by_path.audit_ids) + len(inline.audit_ids)
