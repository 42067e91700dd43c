"""The outbound gate: the worker's answer is scanned before a director sees it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from llm_localfirst import Router
from llm_localfirst.agents import Worker
from llm_localfirst.agents.gate import PLACEHOLDERS, OutboundRefused, gate
from llm_localfirst.audit import AuditRecord
from llm_localfirst.policy import policy_from_data
from llm_localfirst.sensitivity import DETECTORS
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy

Rows = Callable[[Router], list[AuditRecord]]

LEAKY = (
    "Acme: jane.doe@acme.com, +44 20 7946 0958, card 4111 1111 1111 1111, "
    "IBAN GB82 WEST 1234 5698 7654 32, SSN 536-22-1234, "
    "key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD. Renews 2027-03-01."
)


def test_redact_replaces_each_finding_with_its_typed_placeholder() -> None:
    result = gate(LEAKY, mode="redact", detectors=DETECTORS)
    assert result.text == (
        "Acme: [EMAIL], [PHONE], card [CARD], IBAN [IBAN], "
        "SSN [NATIONAL_ID], key [SECRET]. Renews 2027-03-01."
    )
    assert (
        result.redacted
        == result.found
        == {"email": 1, "phone": 1, "payment_card": 1, "iban": 1, "national_id": 1, "secret": 1}
    )
    assert set(PLACEHOLDERS) == set(DETECTORS)


def test_refuse_names_the_kinds_and_never_the_text() -> None:
    with pytest.raises(OutboundRefused) as info:
        gate(LEAKY, mode="refuse", detectors=DETECTORS)
    assert info.value.kinds == ("email", "iban", "national_id", "payment_card", "phone", "secret")
    assert "jane.doe" not in str(info.value) and "4111" not in str(info.value)


def test_allow_returns_the_answer_as_is_but_still_counts() -> None:
    result = gate(LEAKY, mode="allow", detectors=DETECTORS)
    assert result.text == LEAKY and result.redacted == {} and result.found["email"] == 1


def test_a_broken_detector_refuses_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_localfirst.sensitivity import scanner

    def boom(self: object, text: str) -> list[object]:
        raise RuntimeError("detector crashed")

    monkeypatch.setattr(scanner.Scanner, "findings", boom)
    with pytest.raises(OutboundRefused, match="detector_error"):
        gate("anything", mode="redact", detectors=DETECTORS)


def router_with(
    local: FakeUpstream, cloud: FakeUpstream, store: MemoryAuditStore, **worker: object
) -> Router:
    data = offline_policy(local, cloud).model_dump()
    data["worker"] = worker
    return Router(policy_from_data(data), audit=store, probe_ttl=0.001)


@pytest.fixture
def leaky_local(fake_local: FakeUpstream) -> FakeUpstream:
    fake_local.reply = LEAKY
    return fake_local


def test_invariant_the_answer_passes_the_outbound_gate_and_only_kinds_are_audited(
    small_router: Router, leaky_local: FakeUpstream, delegation_rows: Rows
) -> None:
    result = Worker(small_router).run("Summarize the customer file", source="customer file")
    assert "[EMAIL]" in result.text and "jane.doe" not in result.text
    assert "4111" not in result.text and result.redacted["payment_card"] == 1
    assert result.to_dict()["redacted"] == dict(result.redacted)
    (row,) = delegation_rows(small_router)
    assert row.outcome == "ok" and row.id == result.run_id
    assert row.metadata["outbound"] == "redact"
    assert row.metadata["outbound_findings"] == (
        "email=1,iban=1,national_id=1,payment_card=1,phone=1,secret=1"
    )
    assert "jane" not in json.dumps(row.to_dict())


def test_refuse_mode_is_a_refusal_naming_kinds_and_audited(
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
    delegation_rows: Rows,
) -> None:
    fake_local.reply = "Write to jane.doe@acme.com"
    router = router_with(fake_local, fake_cloud, memory_audit, outbound="refuse")
    try:
        with pytest.raises(OutboundRefused, match="email") as info:
            Worker(router).run("Summarize", source="text")
        (row,) = delegation_rows(router)
    finally:
        router.close()
    assert info.value.code == "outbound_refused"
    assert (row.outcome, row.error_class, row.metadata["outbound_findings"]) == (
        "refused",
        "OutboundRefused",
        "email=1",
    )


def test_allow_mode_returns_the_answer_unchanged(
    fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    fake_local.reply = "Write to jane.doe@acme.com"
    router = router_with(fake_local, fake_cloud, memory_audit, outbound="allow")
    try:
        result = Worker(router).run("Summarize", source="text")
    finally:
        router.close()
    assert result.text == "Write to jane.doe@acme.com" and result.redacted == {}


def test_extracted_json_stays_json_after_redaction(
    small_router: Router, fake_local: FakeUpstream
) -> None:
    fake_local.reply = '{"name": "Jane", "email": "jane.doe@acme.com"}'
    result = Worker(small_router).run("Extract the contact", source="x", task_kind="extract")
    assert result.data == {"name": "Jane", "email": "[EMAIL]"}


def test_the_audit_row_of_a_delegation_over_paths_names_no_path(
    tmp_path: Path,
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
    delegation_rows: Rows,
) -> None:
    (tmp_path / "acme-layoffs.txt").write_text("Confidential plan.", encoding="utf-8")
    router = router_with(fake_local, fake_cloud, memory_audit, roots=[str(tmp_path)])
    try:
        Worker(router).run("Summarize", paths=["acme-layoffs.txt"])
        (row,) = delegation_rows(router)
    finally:
        router.close()
    meta = row.metadata
    assert (meta["delegation"], meta["files"], meta["bytes_read"]) == ("paths", "1", "18")
    assert meta["sources"].startswith("r0:") and "layoffs" not in json.dumps(row.to_dict())
    assert int(meta["saved_tokens"]) == int(meta["source_tokens"]) > 0
