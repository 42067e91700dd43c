"""LangChain's standard tool suites (``langchain-tests``) run against ``worker_tool``.

The suites build the tool from ``tool_constructor`` and invoke it with
``tool_invoke_params_example``, sync and async, with and without a tool call. No
standard test is overridden; the adjustments are to how the suite runs here:

- the tool needs a router over the loopback fakes, which an autouse fixture puts
  on the test instance before ``tool_constructor`` is read;
- the integration suite has ``async def`` tests and this project runs
  pytest-asyncio in strict mode, so the classes carry the ``anyio`` marker (the
  same runner every async test here uses); the fixture then closes the connections
  an async test opened on its event loop, on that loop.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from llm_localfirst import Router
from llm_localfirst.adapters.langchain import worker_tool
from llm_localfirst.testing import FakeUpstream
from tests.adapters.conftest import SOURCE


class _WorkerToolCase:
    """What both suites need: a tool over the fakes, and an example call."""

    _router: Router

    @pytest.fixture(autouse=True)
    def _local_router(
        self, request: pytest.FixtureRequest, router: Router, fake_cloud: FakeUpstream
    ) -> Iterator[None]:
        self._router = router
        if inspect.iscoroutinefunction(request.function):
            request.getfixturevalue("arouter")  # closes what the test opens on its loop
        yield
        assert fake_cloud.model_calls() == []  # no standard test reaches the cloud

    @property
    def tool_constructor(self) -> BaseTool:
        return worker_tool(self._router)

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {
            "task": "Summarize in one sentence",
            "source": SOURCE,
            "task_kind": "summarize",
            "max_tokens": 64,
        }


@pytest.mark.anyio
class TestWorkerToolUnit(_WorkerToolCase, ToolsUnitTests):
    """``langchain_tests.unit_tests.ToolsUnitTests``."""


@pytest.mark.anyio
class TestWorkerToolIntegration(_WorkerToolCase, ToolsIntegrationTests):
    """``langchain_tests.integration_tests.ToolsIntegrationTests`` (against the local fake)."""
