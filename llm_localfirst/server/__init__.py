"""The network faces of the router.

- :mod:`.mcp`: the MCP server (``llm-localfirst mcp``): ``app``, ``tools``, ``resources``;
- :mod:`.proxy`: the OpenAI-compatible HTTP proxy (``llm-localfirst serve``).

Importing this package imports nothing: each server imports its framework (the
``mcp`` SDK, Starlette, uvicorn) when it is built.
"""
