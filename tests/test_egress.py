"""The Python face scans what leaves too: pass-through fields, names, parts, numbers."""

from __future__ import annotations

from typing import Any

import pytest

from llm_localfirst import InvalidRequest, Router
from llm_localfirst.sensitivity.egress import walk
from llm_localfirst.testing import FakeUpstream
from tests.server.test_proxy_egress import EMAIL, cloud_first


@pytest.fixture
def cloud_router(fake_local: FakeUpstream, fake_cloud: FakeUpstream, memory_audit: Any) -> Any:
    with Router(cloud_first(fake_local, fake_cloud), audit=memory_audit, probe_ttl=0.001) as router:
        yield router


@pytest.mark.parametrize(
    "kwargs",
    [
        {"extra": {"user": EMAIL}},
        {"extra": {"metadata": {"who": EMAIL}}},
        {
            "extra": {
                "tools": [{"type": "function", "function": {"name": "f", "description": EMAIL}}]
            }
        },
        {"messages": [{"role": "user", "name": EMAIL, "content": "hi"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": {"x": EMAIL}}]}]},
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
                    ],
                }
            ]
        },
    ],
)
def test_the_python_api_keeps_a_request_local_whatever_field_carries_the_value(
    cloud_router: Router, fake_cloud: FakeUpstream, kwargs: dict[str, Any]
) -> None:
    prompt = None if "messages" in kwargs else "hello"
    answer = cloud_router.complete(prompt, **kwargs)
    assert answer.decision.target == "local"
    assert fake_cloud.model_calls() == []


def test_the_python_api_refuses_malformed_content_parts(cloud_router: Router) -> None:
    with pytest.raises(InvalidRequest) as refused:
        cloud_router.complete(messages=[{"role": "user", "content": [5, None, True]}])
    assert refused.value.param == "messages[0].content[1]"


def test_the_walk_reads_keys_values_and_numbers_standing_for_text() -> None:
    out = walk(
        {
            "messages": [{"role": "user", "content": [4111111111111111]}],
            "metadata": {"k e y": "v a l"},
            "seed": 123456789,
        }
    )
    assert {"k e y", "v a l", "4111111111111111"} <= set(out.strings)
    assert "123456789" not in out.strings  # numbers elsewhere are options, not text
    assert out.unreadable == {"number"}
    assert walk({"prompt": [[1, 2], [3]]}).unreadable == {"tokens"}
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    assert walk({"input": deep}).strings == ["x"]  # iterative: no recursion limit
