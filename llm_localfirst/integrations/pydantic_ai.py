"""``attach_worker`` and ``worker_toolset`` at the 0.1 import path (a re-export).

The implementation is :mod:`llm_localfirst.adapters.pydantic_ai`; this module adds
nothing, so both paths name the same objects. Needs ``llm-localfirst[pydantic-ai]``.
"""

from __future__ import annotations

from ..adapters.pydantic_ai import WorkerToolset, attach_worker, worker_toolset

__all__ = ["WorkerToolset", "attach_worker", "worker_toolset"]
