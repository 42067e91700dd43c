"""The local worker over loopback fakes: templates, map-reduce, locality, hooks, errors.

The upstreams are ``llm_localfirst.testing.FakeUpstream``; ``reply`` scripts what the
fake model answers. The real llama.cpp tier is in test_worker_llama.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from llm_localfirst import (
    InvalidRequest,
    LocalUnavailable,
    ModelNotAllowed,
    PrivacyViolation,
    Router,
    Settings,
)
from llm_localfirst.agents import TaskKind, Worker, WorkerOutputError, WorkerResult
from llm_localfirst.audit import AuditRecord
from llm_localfirst.policy import policy_from_data
from llm_localfirst.testing import FakeUpstream, MemoryAuditStore, offline_policy
from tests.agents.conftest import SMALL_WINDOW, long_text, with_window

Rows = Callable[[Router], list[AuditRecord]]


def script(*answers: str) -> Callable[[dict[str, Any]], str]:
    """A fake reply that gives ``answers`` in turn, then repeats the last one."""
    queue = list(answers)

    def reply(body: dict[str, Any]) -> str:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return reply


def user_text(call: Any) -> str:
    return str(call.body["messages"][-1]["content"])


def system_text(call: Any) -> str:
    return str(call.body["messages"][0]["content"])


# ------------------------------------------------------------------ one call


def test_a_short_source_runs_in_one_local_call_audited_as_face_worker(
    small_router: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream, audit_rows: Rows
) -> None:
    fake_local.reply = "Three bullets."
    result = Worker(small_router).run(
        "Summarize in 3 bullets", source="A short memo.", task_kind="summarize"
    )
    assert (result.text, result.task_kind, result.destination, result.model, result.chunks) == (
        "Three bullets.",
        "summarize",
        "local",
        "fake-local",
        1,
    )
    assert result.tokens_in > 0 and result.tokens_out > 0 and result.data is None
    assert result.audit_ids == (result.audit_id,)
    (call,) = fake_local.model_calls()
    assert fake_cloud.model_calls() == []
    assert call.body["model"] == "fake-local"
    assert "Summarize the source" in system_text(call)
    assert user_text(call) == "Summarize in 3 bullets\n\n<source>\nA short memo.\n</source>"
    (row,) = audit_rows(small_router)
    assert (row.id, row.face, row.endpoint, row.outcome, row.locality) == (
        result.audit_id,
        "worker",
        "worker",
        "ok",
        "local",
    )
    assert not row.sensitive and row.sensitive_reasons == ()  # local-only claims no sensitivity
    assert set(row.tags) == {"worker", "task:summarize"}


def test_freeform_without_a_source_still_works(
    small_router: Router, fake_local: FakeUpstream
) -> None:
    result = Worker(small_router).run("Write a haiku about rain")
    assert result.text == "echo: Write a haiku about rain" and result.task_kind == "freeform"


def test_the_result_is_json_friendly(small_router: Router) -> None:
    result = Worker(small_router).run("Say hi", source="x")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["audit_ids"] == [result.audit_id] and str(result) == result.text


@pytest.mark.anyio
async def test_arun_works_on_the_callers_event_loop(small_router: Router) -> None:
    try:
        with anyio.fail_after(10):
            result = await Worker(small_router).arun("Say hi", source="x", task_kind=TaskKind.DRAFT)
    finally:
        await small_router.aclose()  # close the clients opened on this loop
    assert result.task_kind == "draft"


# ------------------------------------------------------------------ map-reduce


def test_a_long_source_is_split_mapped_and_reduced_with_progress(
    small_router: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    source = long_text(30, 8)
    steps: list[tuple[int, int, str]] = []
    result = Worker(small_router).run(
        "Summarize for a CFO",
        source=source,
        task_kind="summarize",
        progress=lambda d, t, m: steps.append((d, t, m)),
    )
    calls = fake_local.model_calls()
    assert result.chunks > 3 and len(calls) == result.chunks + 1
    assert len(result.audit_ids) == len(calls) and fake_cloud.model_calls() == []
    # Every request fits the 1024-token window by the chars/4 estimate.
    for call in calls:
        chars = sum(len(m["content"]) for m in call.body["messages"])
        assert chars / 4 + call.body["max_tokens"] <= SMALL_WINDOW
    # Every sentence of the source reached the model in some chunk.
    sent = "\n".join(user_text(c) for c in calls[:-1])
    for p in range(30):
        assert f"Paragraph {p} sentence 7 says" in sent
    assert "part 1 of" in system_text(calls[0])
    assert "[Part 1]" in user_text(calls[-1]) and "Merge them into one summary" in system_text(
        calls[-1]
    )
    assert steps[0] == (0, result.chunks + 1, f"split the source into {result.chunks} chunks")
    assert steps[-1][:2] == (len(calls), len(calls))
    assert [d for d, _, _ in steps] == sorted(d for d, _, _ in steps)


def test_partials_too_long_for_one_call_are_reduced_recursively(
    small_router: Router, fake_local: FakeUpstream
) -> None:
    fake_local.reply = "A partial summary that is rather long. " * 15  # ~600 chars per partial
    steps: list[tuple[int, int, str]] = []

    async def progress(done: int, total: int, message: str) -> None:
        steps.append((done, total, message))

    result = Worker(small_router).run(
        "Summarize", source=long_text(40, 8), task_kind="summarize", progress=progress
    )
    calls = fake_local.model_calls()
    levels = [c for c in calls if "a later step shortens it further" in system_text(c)]
    assert levels and len(calls) == result.chunks + len(levels) + 1
    assert steps[-1][0] == steps[-1][1] == len(calls)
    assert steps[-1][1] > steps[0][1]  # the total grew when the reduce needed more levels


def test_a_reduce_that_cannot_shrink_fails_with_a_typed_error(
    small_router: Router, fake_local: FakeUpstream
) -> None:
    fake_local.reply = "word " * 500  # a model ignoring max_tokens: answers never shrink
    with pytest.raises(WorkerOutputError, match="did not shrink"):
        Worker(small_router).run("Summarize", source=long_text(12, 8), task_kind="summarize")
    assert len(fake_local.model_calls()) < 40  # gave up after one level, no runaway


def test_translations_of_chunks_are_joined_in_order_without_a_reduce_call(
    small_router: Router, fake_local: FakeUpstream
) -> None:
    fake_local.reply = lambda body: "[" + user_text_of(body).split("sentence 0", 1)[0][-14:] + "]"
    source = long_text(20, 8)
    result = Worker(small_router).run(
        "Translate", source=source, task_kind="translate", target_language="French"
    )
    calls = fake_local.model_calls()
    assert len(calls) == result.chunks > 1
    assert result.text.count("\n\n") == result.chunks - 1
    assert all("into French" in system_text(c) for c in calls)
    # No overlap for translations: each paragraph is sent exactly once.
    sent = [user_text(c) for c in calls]
    for p in range(20):
        assert sum(f"Paragraph {p} sentence 3 " in s for s in sent) == 1


def user_text_of(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


def test_classify_over_chunks_is_a_majority_vote(
    small_router: Router, fake_local: FakeUpstream
) -> None:
    answers = iter(["bug", "billing", "bug", "bug", "praise"] * 10)
    fake_local.reply = lambda body: next(answers)
    result = Worker(small_router).run(
        "Classify the ticket",
        source=long_text(25, 8),
        task_kind="classify",
        labels=["billing", "bug", "praise"],
    )
    assert result.chunks > 1 and result.text == result.data == "bug"


# ------------------------------------------------------------------ extract and classify


SCHEMA = {
    "type": "object",
    "required": ["name", "year"],
    "properties": {"name": {"type": "string"}, "year": {"type": "integer"}},
}


def test_extract_returns_json_validated_against_the_schema(
    small_router: Router, fake_local: FakeUpstream
) -> None:
    fake_local.reply = 'Here you go:\n```json\n{"name": "Ada", "year": 1843}\n```'
    result = Worker(small_router).run(
        "Extract the author and year", source="Ada, 1843.", task_kind="extract", schema=SCHEMA
    )
    assert result.data == {"name": "Ada", "year": 1843}
    assert json.loads(result.text) == result.data
    assert json.dumps(SCHEMA, separators=(",", ":")) in system_text(fake_local.model_calls()[0])


def test_extract_repairs_invalid_json_once(
    small_router: Router, fake_local: FakeUpstream, audit_rows: Rows
) -> None:
    fake_local.reply = script('{"name": "Ada"}', '{"name": "Ada", "year": 1843}')
    result = Worker(small_router).run(
        "Extract", source="Ada, 1843.", task_kind="extract", schema=SCHEMA
    )
    _first, repair = fake_local.model_calls()
    assert result.data == {"name": "Ada", "year": 1843} and len(result.audit_ids) == 2
    assert "rejected" in system_text(repair) and "'year' is a required property" in system_text(
        repair
    )
    assert '{"name": "Ada"}' in user_text(repair)


def test_extract_without_a_schema_only_needs_valid_json(
    small_router: Router, fake_local: FakeUpstream
) -> None:
    fake_local.reply = script("no json here", "[1, 2, 3]")
    result = Worker(small_router).run(
        "List the numbers", source="one two three", task_kind="extract"
    )
    assert result.data == [1, 2, 3] and len(fake_local.model_calls()) == 2


def test_extract_gives_up_after_one_repair_with_a_typed_error(
    small_router: Router, fake_local: FakeUpstream
) -> None:
    fake_local.reply = "still not json"
    with pytest.raises(WorkerOutputError) as info:
        Worker(small_router).run("Extract", source="x", task_kind="extract", schema=SCHEMA)
    assert info.value.task_kind == "extract" and "not valid JSON" in info.value.problem
    assert info.value.decision_id is not None and len(fake_local.model_calls()) == 2


@pytest.mark.parametrize(
    "answer",
    ["bug", "Bug.", "  BUG\n", "Label: bug", '"bug"', "I would say this is a bug report.", "Bugs"],
)
def test_classify_normalises_the_answer_to_exactly_one_label(
    answer: str, small_router: Router, fake_local: FakeUpstream
) -> None:
    fake_local.reply = answer
    result = Worker(small_router).run(
        "Classify the ticket",
        source="It crashes.",
        task_kind="classify",
        labels=["billing", "bug", "praise"],
    )
    assert result.data == result.text == "bug" and len(fake_local.model_calls()) == 1


def test_classify_asks_once_more_then_raises(
    small_router: Router, fake_local: FakeUpstream
) -> None:
    fake_local.reply = script("banana", "bug")
    worker = Worker(small_router)
    assert (
        worker.run("Classify", source="x", task_kind="classify", labels=["bug", "billing"]).text
        == "bug"
    )
    fake_local.reply = "banana"
    with pytest.raises(WorkerOutputError, match="matches none of the labels"):
        worker.run("Classify", source="x", task_kind="classify", labels=["bug", "billing"])


# ------------------------------------------------------------------ locality


def test_a_cloud_destination_is_refused_at_construction(small_router: Router) -> None:
    with pytest.raises(PrivacyViolation) as info:
        Worker(small_router, destination="cloud")
    assert info.value.destination == "cloud"
    with pytest.raises(PrivacyViolation):
        Worker(small_router, destination=["local", "cloud"])


@pytest.mark.parametrize("name", ["gpt-4o", "http://127.0.0.1:1/v1", ""])
def test_an_unknown_destination_is_refused_at_construction(small_router: Router, name: str) -> None:
    with pytest.raises((ModelNotAllowed, InvalidRequest)):
        Worker(small_router, destination=name)


def test_a_destination_that_became_cloud_after_a_reload_is_refused_at_call_time(
    fake_local: FakeUpstream,
    fake_cloud: FakeUpstream,
    memory_audit: MemoryAuditStore,
    audit_rows: Rows,
) -> None:
    policy = offline_policy(fake_local, fake_cloud)
    router = Router(policy, audit=memory_audit, probe_ttl=0.001)
    try:
        worker = Worker(router)
        assert worker.run("Say hi", source="x").destination == "local"
        fake_local.reset()
        data = policy.model_dump()
        data["destinations"]["local"]["locality"] = "cloud"
        router.reload(type(policy).model_validate(data))
        with pytest.raises(PrivacyViolation, match="only on local destinations"):
            worker.run("Summarize", source="private text")
        assert fake_local.model_calls() == [] and fake_cloud.model_calls() == []
        row = audit_rows(router)[-1]
        assert (row.face, row.endpoint, row.outcome, row.error_class) == (
            "worker",
            "worker",
            "refused",
            "PrivacyViolation",
        )
    finally:
        router.close()


def test_the_worker_never_falls_back_to_the_cloud_when_local_is_down(
    small_router: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream, audit_rows: Rows
) -> None:
    fake_local.stop()
    with pytest.raises(LocalUnavailable) as info:
        Worker(small_router).run("Summarize", source="payroll data", task_kind="summarize")
    assert fake_cloud.model_calls() == []
    (row,) = audit_rows(small_router)
    assert (row.id, row.face, row.outcome) == (info.value.decision_id, "worker", "refused")


@pytest.mark.parametrize("fault", [500, 429])
def test_a_failing_local_model_is_not_replaced_by_the_cloud(
    fault: int, small_router: Router, fake_local: FakeUpstream, fake_cloud: FakeUpstream
) -> None:
    fake_local.status = fault
    with pytest.raises(LocalUnavailable):
        Worker(small_router).run("Summarize", source="x")
    assert fake_cloud.model_calls() == []


@pytest.fixture
def two_locals() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream() as first, FakeUpstream() as second:
        yield first, second


def two_local_router(first: FakeUpstream, second: FakeUpstream, store: MemoryAuditStore) -> Router:
    local = {"provider": "openai", "locality": "local"}
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "gpu": {**local, "base_url": first.base_url, "model": "big"},
                "laptop": {**local, "base_url": second.base_url, "model": "small"},
            },
            "default": {"to": ["gpu"], "fallback": ["laptop"]},
        }
    )
    return Router(policy, audit=store, probe_ttl=0.001)


def test_the_worker_tries_its_destinations_in_order(
    two_locals: tuple[FakeUpstream, FakeUpstream], memory_audit: MemoryAuditStore
) -> None:
    first, second = two_locals
    router = two_local_router(first, second, memory_audit)
    try:
        worker = Worker(router, destination=["gpu", "laptop"])
        assert worker.run("Hi", source="x").destination == "gpu"
        first.stop()
        result = worker.run("Hi", source="x")
        assert (result.destination, result.model) == ("laptop", "small")
        second.stop()
        with pytest.raises(LocalUnavailable):
            worker.run("Hi", source="x")
    finally:
        router.close()


def test_local_means_every_local_destination_in_policy_order(
    two_locals: tuple[FakeUpstream, FakeUpstream], memory_audit: MemoryAuditStore
) -> None:
    router = two_local_router(*two_locals, memory_audit)
    try:
        worker = Worker(router)  # "local" is not a destination name in this policy
        assert worker.local_destinations() == ("gpu", "laptop")
    finally:
        router.close()


def test_a_policy_without_local_destinations_has_no_worker(
    fake_cloud: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    policy = policy_from_data(
        {
            "version": 1,
            "destinations": {
                "cloud": {"provider": "openai", "base_url": fake_cloud.base_url, "model": "m"}
            },
            "default": {"to": ["cloud"]},
        }
    )
    router = Router(policy, audit=memory_audit)
    try:
        with pytest.raises(ModelNotAllowed):
            Worker(router)
    finally:
        router.close()


# ------------------------------------------------------------------ hooks, bad input, savings


def test_on_delegate_receives_the_task_and_the_result(small_router: Router) -> None:
    seen: list[tuple[str, WorkerResult]] = []
    result = Worker(small_router, on_delegate=lambda t, r: seen.append((t, r))).run(
        "Summarize", source="x"
    )
    assert seen == [("Summarize", result)]


def test_a_failing_on_delegate_hook_is_logged_not_raised(
    small_router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(task: str, result: WorkerResult) -> None:
        raise RuntimeError("observer broke")

    with caplog.at_level(logging.ERROR, logger="llm_localfirst.worker"):
        result = Worker(small_router, on_delegate=hook).run("Summarize", source="x")
    assert result.text and "on_delegate hook failed" in caplog.text


def test_on_delegate_is_not_called_when_the_run_fails(
    small_router: Router, fake_local: FakeUpstream
) -> None:
    seen: list[str] = []
    fake_local.stop()
    with pytest.raises(LocalUnavailable):
        Worker(small_router, on_delegate=lambda t, r: seen.append(t)).run("x", source="y")
    assert seen == []


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"task_kind": "poem"}, "task_kind"),
        ({"task_kind": "extract", "schema": {"type": "nonsense"}}, "schema"),
        ({"source": 42}, "source"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": 5000}, "max_tokens"),
    ],
)
def test_bad_input_is_refused_before_any_call_and_audited(
    kwargs: dict[str, Any],
    param: str,
    small_router: Router,
    fake_local: FakeUpstream,
    audit_rows: Rows,
) -> None:
    with pytest.raises(InvalidRequest) as info:
        Worker(small_router).run("Do it", **kwargs)
    assert info.value.param == param and fake_local.model_calls() == []
    (row,) = audit_rows(small_router)
    assert (row.face, row.endpoint, row.outcome, row.error_class) == (
        "worker",
        "worker",
        "error",
        "InvalidRequest",
    )


def test_a_source_over_the_input_limit_is_refused(
    fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    router = Router(
        offline_policy(fake_local), audit=memory_audit, settings=Settings.load(max_input_chars=1000)
    )
    try:
        with pytest.raises(InvalidRequest, match="limit is 1000") as info:
            Worker(router).run("Summarize", source="x" * 1001)
        assert info.value.param == "source" and fake_local.model_calls() == []
    finally:
        router.close()


def test_audit_metadata_marks_where_a_delegation_came_from(
    small_router: Router, audit_rows: Rows
) -> None:
    Worker(small_router, metadata={"via": "mcp"}).run("Hi", source="x")
    (row,) = audit_rows(small_router)
    assert row.metadata["via"] == "mcp"


def test_worker_savings_price_local_tokens_at_the_cloud_rate(small_router: Router) -> None:
    result = Worker(small_router).run("Hi", source="x" * 400)
    report = Worker(small_router).savings()
    assert (report.tokens_in, report.tokens_out) == (result.tokens_in, result.tokens_out)
    assert report.reference == "cloud" and report.cloud_cost_usd is not None
    expected = (result.tokens_in * 1.0 + result.tokens_out * 5.0) / 1e6
    assert report.cloud_cost_usd == pytest.approx(expected)


def test_the_window_used_is_the_smallest_of_the_workers_destinations(
    fake_local: FakeUpstream, memory_audit: MemoryAuditStore
) -> None:
    router = Router(with_window(offline_policy(fake_local), 4096), audit=memory_audit)
    try:
        source = long_text(12, 8)  # ~7k characters: fits 4096 tokens, not 1024
        assert Worker(router).run("Summarize", source=source).chunks == 1
        router.reload(with_window(offline_policy(fake_local), SMALL_WINDOW))
        assert Worker(router).run("Summarize", source=source).chunks > 1
    finally:
        router.close()


# ------------------------------------------------------------------ real windows and tokenizers


class DenseTokenizerProvider:
    """An in-process local model whose tokenizer packs 2 characters per token and whose
    real window is 1024 tokens, while the policy claims 4096: it refuses long prompts the
    way llama.cpp and vLLM do."""

    def __init__(self, destination: Any) -> None:
        self.destination = destination
        self.prompts: list[int] = []

    async def chat(self, ticket: Any, body: Any) -> Any:
        from llm_localfirst.providers.base import AttemptFailed, ChatResult

        ticket.check(self.destination)
        chars = sum(len(m["content"]) for m in body["messages"])
        tokens = chars // 2
        if tokens + body["max_tokens"] > 1024:
            raise AttemptFailed.from_status(
                400,
                (
                    "This model's maximum context length is 1024 tokens. However, you requested "
                    f"{tokens + body['max_tokens']} tokens ({tokens} in the messages, "
                    f"{body['max_tokens']} in the completion)."
                ),
            )
        self.prompts.append(tokens)
        return ChatResult({}, "short partial", "stop", tokens, 3)

    def stream_chat(self, ticket: Any, body: Any) -> Any:  # pragma: no cover - unused
        raise NotImplementedError

    async def embeddings(self, ticket: Any, body: Any) -> Any:  # pragma: no cover - unused
        raise NotImplementedError

    async def probe(self) -> tuple[bool, str]:
        return True, "in process"

    async def aclose(self) -> None:
        return None


def test_a_smaller_real_window_and_denser_tokenizer_are_learned_and_the_run_replans(
    fake_local: FakeUpstream, memory_audit: MemoryAuditStore, audit_rows: Rows
) -> None:
    providers: list[DenseTokenizerProvider] = []

    def factory(destination: Any) -> DenseTokenizerProvider:
        providers.append(DenseTokenizerProvider(destination))
        return providers[-1]

    policy = with_window(offline_policy(fake_local), 4096)
    router = Router(policy, audit=memory_audit, provider_factory=factory, probe_ttl=60)
    try:
        worker = Worker(router)
        source = long_text(10, 8)  # ~6k chars: one call by the policy's numbers, 3k+ tokens
        first = worker.run("Summarize", source=source, task_kind="summarize")
        assert first.chunks > 1
        rows = audit_rows(router)
        assert rows[0].outcome == "error" and rows[0].error_class == "UpstreamError"
        assert all(r.outcome == "ok" for r in rows[1:])
        assert worker.learned_window("local", 4096) == 1024
        assert worker.learned_chars_per_token("local") < 2.1
        assert max(providers[0].prompts) <= 1024
        second = worker.run("Summarize", source=source, task_kind="summarize")
        assert all(r.outcome == "ok" for r in audit_rows(router)[len(rows) :])
        assert second.chunks == first.chunks
    finally:
        router.close()
