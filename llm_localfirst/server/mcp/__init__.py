"""The MCP server face (``llm-localfirst mcp``): tools, resources, stdio and HTTP.

Modules: :mod:`.app` (building the server, transports, the bearer-token middleware),
:mod:`.tools` (``route``, ``complete``, ``delegate_to_worker``) and :mod:`.resources`
(``audit://``, ``policy://``, ``status://``). Importing this package does not import
the ``mcp`` SDK; building a server does.
"""

from __future__ import annotations

from .app import BearerTokenMiddleware, build_server, http_app, http_server, run

__all__ = ["BearerTokenMiddleware", "build_server", "http_app", "http_server", "run"]
