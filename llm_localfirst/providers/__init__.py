"""Back ends: one provider per wire protocol, all behind the egress guard.

- :mod:`.base`: the provider protocol, the egress guard and its tickets, the one
  API-key lookup.
- :mod:`.client`: the one HTTP/1.1 client (pooled per event loop, TLS, flow
  control, never re-sends a POST, connects to vetted addresses); the probe uses it too.
- :mod:`.sse`: the one server-sent events parser.
- :mod:`.openai_compat`: every OpenAI-compatible destination (Ollama, vLLM, LM
  Studio, llama.cpp, OpenAI), for every face.
- :mod:`.anthropic` (+ :mod:`.anthropic_translate`): the Messages API through the
  ``anthropic`` SDK, whose local connections are vetted by :mod:`._vetting`.

``make_provider`` picks the implementation for a destination's ``provider``
field. The Anthropic SDK is imported only when an Anthropic destination is
actually used, never at import time. No provider decides where a request goes.
"""

from __future__ import annotations

from typing import Any

from ..registry import Destination
from .base import AttemptFailed, ChatResult, EgressTicket, Provider, egress_guard

__all__ = [
    "AttemptFailed",
    "ChatResult",
    "EgressTicket",
    "Provider",
    "egress_guard",
    "make_provider",
]


def make_provider(destination: Destination, **kwargs: Any) -> Provider:
    """Build the provider for ``destination``.

    Raises:
        ImportError: an extra is missing (with the ``pip install`` hint).
    """
    if destination.provider == "anthropic":
        from .anthropic import AnthropicProvider

        return AnthropicProvider(destination, **kwargs)
    from .openai_compat import OpenAICompatProvider

    return OpenAICompatProvider(destination, **kwargs)
