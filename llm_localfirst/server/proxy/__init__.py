"""The OpenAI-compatible proxy face (``llm-localfirst serve``).

Modules: :mod:`.app` (the ASGI app, model routes, serving), :mod:`.openai_wire`
(parsing OpenAI bodies into requests and errors into OpenAI's shape),
:mod:`.model_calls` (the call and stream lifecycle on the wire), :mod:`.admin` (admin
API and UI), :mod:`.metrics` (Prometheus), :mod:`.reload` (SIGHUP and
``/admin/reload``) and :mod:`.openapi`.
"""

from __future__ import annotations

from .app import ProxyApp, build_router, create_app, serve

__all__ = ["ProxyApp", "build_router", "create_app", "serve"]
