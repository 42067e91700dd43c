"""Former home of the proxy's own OpenAI provider; kept so old imports keep working.

There is one OpenAI-compatible provider now (:mod:`.openai_compat`), used by every
face. ``provider_factory`` is :func:`~llm_localfirst.providers.make_provider`.
"""

from __future__ import annotations

from . import make_provider as provider_factory
from .openai_compat import OpenAICompatProvider as FastOpenAIProvider

__all__ = ["FastOpenAIProvider", "provider_factory"]
