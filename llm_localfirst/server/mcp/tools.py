"""The MCP tools ``route``, ``complete`` and ``delegate_to_worker``, and their wire errors.

This module owns what a calling model sees of the tools: names, descriptions
(``delegate_to_worker``'s comes from :mod:`llm_localfirst.agents.director`),
argument schemas with per-argument descriptions, output schemas
(:class:`RouteOutput`, :class:`CompleteOutput`, :class:`DelegateOutput`), progress
notifications for long worker runs, and :func:`tool_error`, the one place where a
``LocalFirstError`` becomes an MCP tool error (``isError``) the model can read and
act on. ``delegate_to_worker``'s arguments are
:class:`~llm_localfirst.agents.arguments.DelegateArgs`, the model every face
shares; when a call names ``paths``, the client's roots (the folders it shares) are
asked through the SDK's ``ListRoots`` resolver and added to ``LF_WORKER_ROOTS`` and
the policy's ``worker.roots``.

Auditing: ``route`` writes a dry-run row (face ``mcp``, endpoint ``route``);
``complete`` is audited by the router (face ``mcp``, endpoint ``complete``);
``delegate_to_worker`` runs the :class:`~llm_localfirst.agents.Worker`, whose calls
are audited as face ``worker`` with metadata ``via=mcp``. Arguments the SDK rejects
against the input schema are audited by :class:`LocalFirstMCP` (face ``mcp``).

It must never route on its own (every decision is the router's), never fall back
from the worker to the cloud, and never put prompt or source text in logs or errors.
"""

from __future__ import annotations

import inspect
import logging
import uuid
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, ListRoots, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import (
    CallToolResult,
    InputRequiredResult,
    ListRootsResult,
    TextContent,
    ToolAnnotations,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field, ValidationError

from ...agents.arguments import DelegateArgs
from ...agents.arguments import parameters as delegate_parameters
from ...agents.director import DELEGATE_DESCRIPTION, describe_failure
from ...agents.worker import Worker, WorkerResult, describe_documents
from ...errors import InvalidRequest, LocalFirstError
from ...request import check_tags
from ...router import Router
from .messages import routing_failure

__all__ = [
    "CompleteOutput",
    "DelegateOutput",
    "LocalFirstMCP",
    "RouteOutput",
    "register_tools",
    "tool_error",
]

log = logging.getLogger("llm_localfirst.mcp")

#: The audit endpoint of each tool.
ENDPOINTS = {"route": "route", "complete": "complete", "delegate_to_worker": "worker"}
#: ``_meta`` key of the structured error on a failed tool call.
ERROR_META = "llm-localfirst/error"

KindArg = Literal["bulk", "reason", "auto"]
TaskKindArg = Literal[
    "summarize", "draft", "translate", "reformat", "extract", "classify", "freeform"
]

ROUTE_DESCRIPTION = """\
Preview where a prompt would run under the user's routing policy (a local model on \
their machine, or a cloud model) and why, without calling any model or spending a \
token. Use it before sending private text, or to explain routing to the user.

A sensitive request (sensitive=true, a sensitive tag, or text in which the built-in \
detectors find personal data or secrets) is pinned to local models; if none is up, \
the answer is an error saying the request would fail closed. Do not use this tool to \
get an answer: use `complete` or `delegate_to_worker`.

If the policy turns on the content classifier, route asks the classifier's local model \
(on the user's machine, never the cloud) for one label; that is the only model it calls."""

COMPLETE_DESCRIPTION = """\
Run a prompt through the user's local-first router and return the model's answer. \
The policy sends bulk work and private data to a local model and sends the hard part \
(kind="reason") to a cloud model; ordinary work may fall back to the cloud when the \
local model is down.

Set sensitive=true for anything private: it then runs only on a local model, and if \
none is up the call fails instead of leaking. Use it for one answer under the user's \
policy (a second opinion, a quick rewrite). For bulk work on long text (summaries, \
extraction, translation), prefer `delegate_to_worker`: it splits long sources and \
never leaves the machine. `model` is "auto" or a destination name from \
policy://current; URLs and other names are refused."""

_DESC = {
    "prompt": "The instruction or question.",
    "source": (
        "Optional text to work on, sent after the prompt in a <source> block (a document, "
        "record or log)."
    ),
    "system": "Optional system prompt.",
    "kind": (
        '"bulk" for mechanical text work, "reason" for hard thinking (usually the cloud), '
        '"auto" to let the policy decide.'
    ),
    "sensitive": (
        "true if the text is private: it then runs only on a local model and fails "
        "closed when none is up."
    ),
    "model": '"auto", or a destination name from policy://current.',
    "tags": 'Optional labels the policy can match (e.g. "pii" marks the request sensitive).',
    "max_tokens": "Optional cap on the answer's length, in tokens.",
}


class RouteOutput(BaseModel):
    """Where a request would run, and why (no model was called)."""

    target: Literal["local", "cloud"] = Field(description="Locality of the chosen destination.")
    destination: str = Field(description="The allowlisted destination name.")
    model: str = Field(description="The model id at that destination.")
    reason: str = Field(description="Why, in one sentence.")
    fell_back: bool = Field(description="True when the preferred destination is down.")
    rule: str | None = Field(description="The policy rule that matched.")
    arm: str | None = Field(description="The weighted arm picked inside the rule, if any.")
    sensitive: bool = Field(description="Whether the request counts as sensitive.")
    sensitive_reasons: list[str] = Field(description="Why it is sensitive (flag, tag, detector).")
    chain: list[str] = Field(description="Destinations that would be tried, in order.")
    detectors: list[str] = Field(description="Detectors that fired (never the matched text).")
    classifier_label: str | None = Field(
        default=None, description="The content classifier's label (null: off or it failed)."
    )
    classifier_ms: float | None = Field(
        default=None, description="Classifier latency in ms (0 when cached; null when off)."
    )
    classifier_cached: bool = Field(
        default=False, description="Whether the label came from the classifier's cache."
    )
    classifier: str | None = Field(
        default=None, description="What the classifier did, in one sentence."
    )
    audit_id: str = Field(description="Id of the dry-run audit row (audit://decisions/{id}).")


class CompleteOutput(BaseModel):
    """A routed completion."""

    text: str = Field(description="The model's answer.")
    target: Literal["local", "cloud"] = Field(description="Where it ran.")
    destination: str = Field(description="The destination that answered.")
    model: str = Field(description="The model id that answered.")
    fell_back: bool = Field(description="True when a fallback destination answered.")
    sensitive: bool = Field(description="Whether the request counted as sensitive.")
    rule: str | None = Field(description="The policy rule that matched.")
    tokens_in: int = Field(description="Input tokens.")
    tokens_out: int = Field(description="Output tokens.")
    finish_reason: str | None = Field(description="Why generation stopped.")
    audit_id: str = Field(description="Id of the audit row (audit://decisions/{id}).")


class DelegateOutput(BaseModel):
    """The local worker's result."""

    text: str = Field(description="The answer (JSON text for extract, the label for classify).")
    task_kind: str = Field(description="The task kind that ran.")
    destination: str = Field(description="The local destination that produced the answer.")
    model: str = Field(description="Its model id.")
    tokens_in: int = Field(description="Input tokens over every call of the run.")
    tokens_out: int = Field(description="Output tokens over every call of the run.")
    chunks: int = Field(description="Pieces the source was split into (1 if it fitted).")
    audit_id: str = Field(description="Audit id of the final call.")
    audit_ids: list[str] = Field(description="Audit ids of every call of the run.")
    data: Any = Field(default=None, description="Parsed JSON (extract) or the label (classify).")
    redacted: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "Personal data the outbound gate replaced with "
            'placeholders, per kind (e.g. {"email": 2}).'
        ),
    )
    files: list[str] = Field(
        default_factory=list,
        description=("Files read (paths relative to their allowed root) and documents named."),
    )
    bytes_read: int = Field(default=0, description="Bytes of those files.")
    run_id: str | None = Field(default=None, description="Audit id of the delegation's row.")


def tool_error(exc: LocalFirstError, tool: str = "delegate_to_worker") -> CallToolResult:
    """The MCP form of a refusal or failure: ``isError`` with an actionable message.

    The text is what the calling model reads, written for the ``tool`` that was
    called; ``_meta["llm-localfirst/error"]`` carries the same facts for programs
    (code, type, audit id, parameter).
    """
    detail: dict[str, Any] = {
        "code": exc.code,
        "type": type(exc).__name__,
        "message": exc.message,
        "decision_id": exc.decision_id,
    }
    for attr in ("param", "destination", "candidates", "status", "budget", "kinds", "path"):
        value = getattr(exc, attr, None)
        if value is not None:
            detail[attr] = list(value) if isinstance(value, tuple) else value
    text = describe_failure(exc) if tool == "delegate_to_worker" else routing_failure(exc, tool)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], is_error=True, _meta={ERROR_META: detail}
    )


def classifier_note(router: Any, decision: Any) -> str | None:
    """The plain sentence ``route`` adds when the content classifier is on."""
    clf = router.lifecycle.assessor.classifier
    if clf is None or decision.classifier_ms is None:
        return None
    who = (
        f"the local model {clf.destination!r}"
        if clf.destination
        else "the team's own classifier (Router(classifier=...))"
    )
    if decision.classifier_cached:
        return (
            f"The content classifier label {decision.classifier_label!r} came from its "
            f"cache; it was first asked of {who}, which runs locally."
        )
    if decision.classifier_label is None:
        return (
            f"The content classifier called {who} and got no valid label "
            f"({decision.classifier_ms:g} ms), so the request counts as sensitive."
        )
    return (
        f"The content classifier called {who}, which answered "
        f"{decision.classifier_label!r} in {decision.classifier_ms:g} ms."
    )


def _ok(output: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=output.model_dump(mode="json"),
    )


class LocalFirstMCP(MCPServer[Any]):
    """``MCPServer`` that audits the arguments the SDK rejects before a tool runs.

    A call whose arguments fail the tool's input schema (wrong types, an unknown
    ``task_kind``) never reaches the tool function; this override records it as a
    rejected request (face ``mcp``) and answers with the same error shape as
    every other refusal.
    """

    def __init__(self, router: Router, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.router = router

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        context: Context[Any, Any] | None = None,
    ) -> CallToolResult | InputRequiredResult:
        """Call a tool; turn an argument validation failure into an audited tool error.

        Raises:
            ToolError: an unknown tool (the SDK's own error).
        """
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            # Only the SDK's argument validation; a crash inside a tool stays a crash.
            if (
                name not in ENDPOINTS
                or isinstance(exc, UnexpectedToolError)
                or not isinstance(cause, ValidationError)
            ):
                raise
            problems = [
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in cause.errors(include_url=False)
            ]
            first = cause.errors(include_url=False)[0]["loc"] if cause.error_count() else ()
            error = InvalidRequest(
                "; ".join(problems)[:500], param=str(first[0]) if first else None
            )
            self.router.lifecycle.reject(face="mcp", endpoint=ENDPOINTS[name], error=error)
            return tool_error(error, name)


_SESSIONS: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()


def session_of(ctx: Context[Any, Any]) -> str | None:
    """The MCP session a tool call belongs to (taint sticks to it), if it has one.

    Streamable HTTP names it (``mcp-session-id``); a stdio or in-memory connection
    on a handshake protocol version is one session, named here by a random id kept
    with the connection. The stateless protocol versions (2026-07-28 on) have no
    session: each request stands alone, and only message digests carry taint.
    """
    headers = ctx.headers
    named = headers.get("mcp-session-id") if headers is not None else None
    if named:
        return f"mcp:{named[:200]}"
    # The SDK builds a ServerSession per request; the connection behind it is the session.
    # ``_connection`` is the SDK's only handle on it (the lowlevel Context's
    # ``session_id`` reads the same attribute); without it every call is its own session.
    session = ctx.request_context.session
    connection: object = getattr(session, "_connection", session)
    connection_id = getattr(connection, "session_id", None)
    if isinstance(connection_id, str) and connection_id:
        return f"mcp:{connection_id[:200]}"
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return None
    sid = _SESSIONS.get(connection)
    if sid is None:
        sid = _SESSIONS[connection] = f"mcp:{uuid.uuid4().hex}"
    return sid


def register_tools(
    server: MCPServer[Any],
    router: Router,
    *,
    worker_destination: str | Sequence[str] = "local",
    documents: Mapping[str, Path | str] | None = None,
) -> None:
    """Add the three tools to ``server``, bound to ``router``.

    Args:
        server: The MCP server being built.
        router: The router every tool uses.
        worker_destination: The destination(s) ``delegate_to_worker`` runs on.
        documents: Named documents the director may refer to (listed, with sizes,
            in the tool's description).
    """

    workers: list[Worker] = []  # one worker per server, so what it learns is kept

    def worker() -> Worker:
        if not workers:
            workers.append(
                Worker(
                    router,
                    destination=worker_destination,
                    metadata={"via": "mcp"},
                    documents=documents,
                )
            )
        return workers[0]

    @server.tool(
        name="route",
        title="Preview routing (no model call)",
        description=ROUTE_DESCRIPTION,
        annotations=ToolAnnotations(
            read_only_hint=True, open_world_hint=False, idempotent_hint=True
        ),
    )
    async def route(
        ctx: Context[Any, Any],
        prompt: Annotated[str, Field(description=_DESC["prompt"])] = "",
        kind: Annotated[KindArg, Field(description=_DESC["kind"])] = "auto",
        sensitive: Annotated[bool, Field(description=_DESC["sensitive"])] = False,
        model: Annotated[str, Field(description=_DESC["model"])] = "auto",
        tags: Annotated[list[str] | None, Field(description=_DESC["tags"])] = None,
    ) -> Annotated[CallToolResult, RouteOutput]:
        lifecycle = router.lifecycle
        try:
            try:
                check_tags(tags or (), "tags")
            except InvalidRequest as exc:
                lifecycle.reject(face="mcp", endpoint="route", error=exc, kind=kind, model=model)
                raise
            request = lifecycle.build(
                prompt or None,
                face="mcp",
                endpoint="route",
                kind=kind,
                sensitive=sensitive,
                model=model,
                tags=tags or (),
                allow_empty=True,
                session=session_of(ctx),
            )
            decision, audit_id = await lifecycle.apreview(request)
        except LocalFirstError as exc:  # audited by the lifecycle
            return tool_error(exc, "route")
        note = classifier_note(router, decision)
        output = RouteOutput(**decision.to_dict(), audit_id=audit_id, classifier=note)
        return _ok(output, f"{decision} (audit id {audit_id})" + (f". {note}" if note else ""))

    @server.tool(
        name="complete",
        title="Run a prompt under the routing policy",
        description=COMPLETE_DESCRIPTION,
        annotations=ToolAnnotations(
            read_only_hint=True, open_world_hint=True, idempotent_hint=False
        ),
    )
    async def complete(
        ctx: Context[Any, Any],
        prompt: Annotated[str, Field(description=_DESC["prompt"])],
        source: Annotated[str | None, Field(description=_DESC["source"])] = None,
        system: Annotated[str | None, Field(description=_DESC["system"])] = None,
        kind: Annotated[KindArg, Field(description=_DESC["kind"])] = "auto",
        sensitive: Annotated[bool, Field(description=_DESC["sensitive"])] = False,
        model: Annotated[str, Field(description=_DESC["model"])] = "auto",
        max_tokens: Annotated[int | None, Field(description=_DESC["max_tokens"], ge=1)] = None,
        tags: Annotated[list[str] | None, Field(description=_DESC["tags"])] = None,
    ) -> Annotated[CallToolResult, CompleteOutput]:
        try:
            try:
                check_tags(tags or (), "tags")
            except InvalidRequest as exc:
                router.lifecycle.reject(
                    face="mcp", endpoint="complete", error=exc, kind=kind, model=model
                )
                raise
            out = await router.acomplete(
                prompt,
                face="mcp",
                source=source,
                system=system,
                kind=kind,
                sensitive=sensitive,
                model=model,
                max_tokens=max_tokens,
                tags=tags or (),
                session=session_of(ctx),
            )
        except LocalFirstError as exc:
            return tool_error(exc, "complete")
        d = out.decision
        output = CompleteOutput(
            text=out.text,
            target=d.target,
            destination=d.destination,
            model=d.model,
            fell_back=d.fell_back,
            sensitive=d.sensitive,
            rule=d.rule,
            tokens_in=out.usage.input_tokens,
            tokens_out=out.usage.output_tokens,
            finish_reason=out.finish_reason,
            audit_id=out.audit_id,
        )
        return _ok(output, out.text)

    async def delegate_to_worker(
        ctx: Context[Any, Any], client_roots: ListRootsResult | None, **arguments: Any
    ) -> CallToolResult:
        async def progress(done: int, total: int, message: str) -> None:
            try:
                await ctx.report_progress(done, total, message)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                log.debug("progress notification not delivered (client gone)")

        try:
            local = worker()
        except LocalFirstError as exc:  # no local destination: refused before any request
            router.lifecycle.reject(face="mcp", endpoint="worker", error=exc)
            return tool_error(exc)
        args = DelegateArgs.model_validate(arguments)
        roots = [str(root.uri) for root in client_roots.roots] if client_roots else []
        try:
            result: WorkerResult = await local.arun(
                args.task, args.source, progress=progress, roots=roots, **args.worker_kwargs()
            )
        except LocalFirstError as exc:
            return tool_error(exc)
        output = DelegateOutput(**result.to_dict())
        return _ok(output, result.text)

    # The arguments are DelegateArgs, the model every face shares; the SDK builds the
    # tool's schema from the signature, so the signature is made from the model.
    # The client's roots, asked only when `paths` is given and the client declares
    # roots: the SDK sends roots/list mid-call (handshake protocol versions) or an
    # input request the client answers on retry (2026-07-28 on).
    roots_param = inspect.Parameter(
        "client_roots",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[ListRootsResult | None, Resolve(ask_client_roots)],
    )
    params = [
        inspect.Parameter(
            "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Context[Any, Any]
        ),
        roots_param,
        *delegate_parameters(),
    ]
    returns = Annotated[CallToolResult, DelegateOutput]
    delegate_to_worker.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        params, return_annotation=returns
    )
    delegate_to_worker.__annotations__ = {p.name: p.annotation for p in params} | {
        "return": returns
    }
    description = DELEGATE_DESCRIPTION
    if documents:
        description += "\n\n" + describe_documents(documents)
    server.add_tool(
        delegate_to_worker,
        name="delegate_to_worker",
        title="Delegate bulk text work to the local model",
        description=description,
        annotations=ToolAnnotations(
            read_only_hint=True, open_world_hint=False, idempotent_hint=False
        ),
    )


def ask_client_roots(ctx: Context[Any, Any], paths: list[str] | None = None) -> ListRoots | None:
    """Resolver: ask for the MCP client's roots (the folders it shares) when needed.

    Only when the call names ``paths`` and the client declared the roots capability;
    otherwise no roots come from the client, and the worker reads only under
    ``LF_WORKER_ROOTS`` and the policy's ``worker.roots``.
    """
    capabilities = ctx.client_capabilities
    if not paths or capabilities is None or capabilities.roots is None:
        return None
    return ListRoots()
