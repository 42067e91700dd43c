"""Back ends: one provider per destination, all behind the egress guard.

``make_provider`` picks the implementation for a destination's ``provider``
field. The Anthropic SDK is imported only when an Anthropic destination is
actually used, never at import time.
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
