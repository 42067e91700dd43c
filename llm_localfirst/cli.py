"""``llm-localfirst``: a thin command line over the public API, grouped by noun.

Commands: ``doctor``, ``route``, ``complete``, ``serve``, ``mcp``,
``policy check|explain`` and ``audit tail|show|export|verify|report``. Exit codes
scripts can rely on: 0 ok, 1 other error, 2 usage, 3 fail-closed
(``LocalUnavailable``), 4 ``PrivacyViolation`` (and ``audit report`` when a
sensitive request reached a non-local destination), 5 ``ModelNotAllowed``,
6 ``UpstreamError``, 7 invalid policy or settings, 8 ``audit verify``/``report``:
the hash chain is broken. Heavy modules (servers, SDKs) are imported only by the
command that needs them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from .errors import (
    BudgetExceeded,
    ConfigError,
    InvalidRequest,
    LocalFirstError,
    LocalUnavailable,
    ModelNotAllowed,
    PolicyError,
    PrivacyViolation,
    UpstreamError,
)

__all__ = ["main"]

EXIT_CODES: tuple[tuple[type[LocalFirstError], int], ...] = (
    (LocalUnavailable, 3),
    (PrivacyViolation, 4),
    (ModelNotAllowed, 5),
    (UpstreamError, 6),
    (PolicyError, 7),
    (ConfigError, 7),
    (InvalidRequest, 2),
    (BudgetExceeded, 9),
)


def exit_code(exc: LocalFirstError) -> int:
    """The documented exit code for an error."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1


def _router(args: argparse.Namespace) -> Any:
    from .router import Router

    overrides: dict[str, Any] = {}
    if getattr(args, "policy", None):
        overrides["policy"] = args.policy
    return Router.from_env(**overrides)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _request_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    headers = dict(h.split("=", 1) for h in getattr(args, "header", None) or [] if "=" in h)
    return {
        "kind": args.kind,
        "sensitive": args.sensitive,
        "model": args.model,
        "tags": args.tag or [],
        "headers": headers,
    }


# ---------------------------------------------------------------------------- commands


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import report

    router = _router(args)
    try:
        data = report(router)
    finally:
        router.close()
    if args.json:
        _print_json(data)
    else:
        from .doctor import render

        sys.stdout.write(render(data))
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    router = _router(args)
    try:
        request = router.lifecycle.build(
            args.prompt, face="cli", endpoint="route", allow_empty=True, **_request_kwargs(args)
        )
        decision, audit_id = router.lifecycle.preview(request)
    finally:
        router.close()
    if args.json:
        _print_json({**decision.to_dict(), "audit_id": audit_id})
    else:
        sys.stdout.write(f"{decision}\n")
    return 0


def cmd_complete(args: argparse.Namespace) -> int:
    source = None
    if args.source == "-":
        source = sys.stdin.read()
    elif args.source:
        try:
            source = Path(args.source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequest(
                f"cannot read --source {args.source}: {exc}", param="source"
            ) from None
    router = _router(args)
    try:
        if args.stream:
            return _stream(router, args, source)
        result = router.complete(
            args.prompt,
            face="cli",
            source=source,
            system=args.system,
            max_tokens=args.max_tokens,
            **_request_kwargs(args),
        )
    finally:
        router.close()
    if args.json:
        _print_json(
            {
                "text": result.text,
                "decision": result.decision.to_dict(),
                "usage": {
                    "input_tokens": result.usage.input_tokens,
                    "output_tokens": result.usage.output_tokens,
                },
                "audit_id": result.audit_id,
            }
        )
    else:
        sys.stdout.write(result.text + "\n")
        sys.stderr.write(
            f"[{result.decision.target}:{result.decision.destination} audit {result.audit_id}]\n"
        )
    if getattr(args, "usage", False):
        # stderr, as in 0.2.0: `complete ... > out.txt` still captures only the text.
        sys.stderr.write(json.dumps(router.ledger.snapshot(), indent=2) + "\n")
    return 0


def _stream(router: Any, args: argparse.Namespace, source: str | None) -> int:
    async def run() -> None:
        async for chunk in router.astream(
            args.prompt,
            face="cli",
            source=source,
            system=args.system,
            max_tokens=args.max_tokens,
            **_request_kwargs(args),
        ):
            sys.stdout.write(chunk.text)
            sys.stdout.flush()
        sys.stdout.write("\n")

    router.lifecycle.run_sync(run())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .server.proxy import serve
    from .server.proxy.workers import resolve_workers

    try:
        workers = resolve_workers(args.workers)
    except ValueError as exc:
        sys.stderr.write(f"llm-localfirst: {exc}\n")
        return 2
    return serve(
        policy=args.policy, host=args.host, port=args.port, insecure=args.insecure, workers=workers
    )


def desktop_config(environ: Any = None) -> dict[str, Any]:
    """A Claude Desktop ``mcpServers`` entry that starts this installation's MCP server.

    The command is an absolute path (Claude Desktop does not start servers from your
    shell, so ``PATH`` and virtualenv activation do not apply); ``env`` carries the
    ``LF_*`` settings in force here that say where models are, never a key.
    """
    import os
    import shutil

    env = os.environ if environ is None else environ
    bindir = Path(sys.executable).parent
    script = next(
        (p for p in (bindir / "llm-localfirst", bindir / "llm-localfirst.exe") if p.is_file()), None
    ) or shutil.which("llm-localfirst")
    if script is not None:
        command, cmd_args = str(Path(script).absolute()), ["mcp"]
    else:  # no console script: the interpreter that has the package
        command, cmd_args = str(Path(sys.executable).absolute()), ["-m", "llm_localfirst", "mcp"]
    settings = {"LF_LOCAL_BASE_URL": "http://localhost:11434/v1", "LF_LOCAL_MODEL_ID": "qwen2.5:7b"}
    for name in (
        "LF_LOCAL_BASE_URL",
        "LF_LOCAL_MODEL_ID",
        "LF_FALLBACK_MODEL",
        "LF_REASON_MODEL",
        "LF_DATA_DIR",
        "LF_AUDIT_URL",
        "LF_POLICY",
    ):
        value = env.get(name)
        if value:
            settings[name] = (
                str(Path(value).resolve()) if name in ("LF_POLICY", "LF_DATA_DIR") else value
            )
    return {
        "mcpServers": {"llm-localfirst": {"command": command, "args": cmd_args, "env": settings}}
    }


def cmd_mcp(args: argparse.Namespace) -> int:
    if args.print_config:
        _print_json(desktop_config())
        return 0
    from .server.mcp import run

    return run(policy=args.policy, transport=args.transport, host=args.host, port=args.port)


def cmd_policy_check(args: argparse.Namespace) -> int:
    from .policy import load_policy

    policy = load_policy(args.file)
    summary = {
        "file": args.file,
        "valid": True,
        "destinations": {
            n: f"{d.locality} {d.provider}:{d.model}" for n, d in policy.destinations.items()
        },
        "rules": [r.name for r in policy.rules],
        "detectors": policy.sensitivity.detectors,
    }
    if args.json:
        _print_json(summary)
    else:
        sys.stdout.write(
            f"{args.file}: valid, {len(policy.destinations)} destinations, "
            f"{len(policy.rules)} rules\n"
        )
        for name, dest in policy.destinations.items():
            sys.stdout.write(f"  {name}: {dest.locality} {dest.provider}:{dest.model}\n")
    return 0


def cmd_policy_explain(args: argparse.Namespace) -> int:
    from .policy import Assessment, decide, load_policy
    from .request import Request
    from .sensitivity import scanner_for

    policy = load_policy(args.file)
    kwargs = _request_kwargs(args)
    prompt = args.prompt or ("x" * (args.tokens * 4) if args.tokens else None)
    request = Request.build(
        prompt,
        allow_empty=True,
        ab_key=args.ab_key,
        metadata=dict(m.split("=", 1) for m in args.meta or [] if "=" in m),
        **kwargs,
    )
    fired = (
        frozenset().union(
            *(scanner_for(policy.sensitivity.detectors).scan(t) for t in request.texts())
        )
        if request.texts()
        else frozenset()
    )
    down = set(args.down or [])
    reasons = tuple(f"detector:{d}" for d in sorted(fired))
    clf = policy.sensitivity.classifier
    label = (args.label or "").strip().casefold() or None
    if clf is not None and label is not None:  # explain calls no model: the label is given
        if label not in clf.labels:
            reasons += ("classifier_invalid",)
            label = None
        elif label in clf.sensitive:
            reasons += (f"classifier:{label}",)
    decision = decide(
        policy,
        request,
        assessment=Assessment(
            reasons, fired, classifier_label=label, classifier_ms=0.0 if label else None
        ),
        is_up=lambda n: n not in down,
    )
    if args.json:
        _print_json(decision.to_dict())
    else:
        sys.stdout.write(
            f"rule:   {decision.rule}\narm:    {decision.arm or '-'}\n"
            f"to:     {decision.target}:{decision.destination} ({decision.model})\n"
            f"chain:  {' -> '.join(decision.chain)}\nwhy:    {decision.reason}\n"
        )
        if clf is not None:
            shown = (
                f"{label} (given with --label)"
                if label
                else f"not run: at request time it asks the local model {clf.destination!r} "
                f"for one of {', '.join(clf.labels)}; pass --label to see the effect"
            )
            sys.stdout.write(f"classifier: {shown}\n")
    return 0


def cmd_budget_status(args: argparse.Namespace) -> int:
    router = _router(args)
    try:
        states = router.spend.status()
        limits = router.budget
        data = {
            "budgets": [st.to_dict() for st in states],
            "process": None
            if limits is None
            else {
                "max_cloud_calls": limits.max_cloud_calls,
                "max_cloud_tokens": limits.max_cloud_tokens,
                "max_cloud_cost": limits.max_cloud_cost,
            },
            "store": router.audit.location,
        }
    finally:
        router.close()
    if args.json:
        _print_json(data)
        return 0
    if not states:
        sys.stdout.write(
            "no budgets in the policy (add 'budgets:'; LF_MAX_CLOUD_* cap one process only)\n"
        )
    for st in states:
        limits_text = ", ".join(
            f"{spent}/{limit:g} {unit}"
            for spent, limit, unit in (
                (f"{st.spent_usd:.6f}", st.limit_usd, "USD"),
                (str(st.spent_tokens), st.limit_tokens, "tokens"),
                (str(st.spent_calls), st.limit_calls, "calls"),
            )
            if limit is not None
        )
        state = "SPENT" if st.exhausted else "ok"
        sys.stdout.write(
            f"{st.name}: {limits_text} this {st.period} (from {st.period_start}); "
            f"in flight {st.reserved_calls}; {state}, on_exceeded "
            f"{st.on_exceeded}\n"
        )
    sys.stdout.write(f"store: {data['store']}\n")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from .audit import AuditFilter, export_csv, export_json, open_store
    from .config import Settings

    settings = Settings.load()
    store = open_store(settings.audit_url, data_dir=settings.resolved_data_dir)
    try:
        if args.audit_cmd == "show":
            if args.id == "latest":
                newest = store.query(AuditFilter(limit=1))
                record = newest[0] if newest else None
            else:
                record = store.get(args.id)
            if record is None:
                sys.stderr.write(f"no audit record with id {args.id!r}\n")
                return 1
            _print_json(record.to_dict())
            return 0
        filters = {
            "face": args.face,
            "destination": args.destination,
            "outcome": args.outcome,
            "since": args.since,
            "until": args.until,
        }
        if args.audit_cmd == "export":
            rows = _every_row(store, AuditFilter(**filters, limit=EXPORT_PAGE), args.limit)
            out: TextIO = (
                open(args.output, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed below)
                if args.output
                else sys.stdout
            )
            try:
                (export_json if args.format == "json" else export_csv)(rows, out)
            finally:
                if args.output:
                    out.close()
            return 0
        records = store.query(AuditFilter(**filters, limit=args.limit))
        if args.json:
            _print_json([r.to_dict() for r in records])
            return 0
        for r in reversed(records):
            where = f"{r.locality}:{r.destination}" if r.destination else "-"
            flag = " sensitive" if r.sensitive else ""
            sys.stdout.write(
                f"{r.ts} {r.id} {r.face:<6} {r.outcome:<8} {where:<20} "
                f"rule={r.rule or '-'}{flag} {r.latency_ms:.1f}ms\n"
            )
        return 0
    finally:
        store.close()


#: ``audit verify`` / ``audit report``: the chain is broken (an edit, deletion, insertion...).
EXIT_CHAIN_BROKEN = 8
#: ``audit report``: a sensitive request reached a non-local destination (as PrivacyViolation).
EXIT_SENSITIVE_LEFT = 4


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from .audit import AuditFilter, open_store, verify_store
    from .config import Settings

    settings = Settings.load()
    store = open_store(settings.audit_url, data_dir=settings.resolved_data_dir)
    try:
        result = verify_store(store)
        unknown = store.open_intents(AuditFilter())
    finally:
        store.close()
    if args.json:
        _print_json(
            {
                **result.to_dict(),
                "store": store.location,
                "sent_outcome_unknown": [i.to_dict() for i in unknown],
            }
        )
    else:
        sys.stdout.write(result.to_text(store.location, unknown))
    return 0 if result.ok else EXIT_CHAIN_BROKEN


def cmd_audit_report(args: argparse.Namespace) -> int:
    from .audit import build_report, open_store
    from .config import Settings

    settings = Settings.load()
    store = open_store(settings.audit_url, data_dir=settings.resolved_data_dir)
    try:
        report = build_report(store, since=args.since, until=args.until)
    finally:
        store.close()
    if args.json:
        _print_json(report.to_dict())
    else:
        sys.stdout.write(report.to_text())
    if not report.verification.ok:
        return EXIT_CHAIN_BROKEN
    return EXIT_SENSITIVE_LEFT if report.sensitive_reached_non_local else 0


#: Rows read per query by ``audit export`` (it streams every row, page after page).
EXPORT_PAGE = 1000


def _every_row(store: Any, flt: Any, limit: int | None) -> Iterator[Any]:
    """Every row ``flt`` matches, newest first, one page in memory at a time.

    Pages are cut by time rather than by offset (an offset walks every skipped row
    again, so a large log would take quadratic time): each page asks for rows older
    than the last page's oldest millisecond, and the rows of that millisecond are
    read whole first, so no row is skipped or written twice.
    """
    import dataclasses
    import itertools
    from datetime import datetime, timedelta

    from .audit.record import format_iso

    def pages_of(window: Any) -> Iterator[Any]:
        for offset in itertools.count(0, window.limit):
            page = store.query(dataclasses.replace(window, offset=offset))
            yield from page
            if len(page) < window.limit:
                return

    def rows() -> Iterator[Any]:
        until = flt.until
        while True:
            page = store.query(dataclasses.replace(flt, until=until, offset=0))
            if len(page) < flt.limit:
                yield from page
                return
            last = page[-1].ts
            yield from (r for r in page if r.ts != last)
            after = format_iso(datetime.fromisoformat(last) + timedelta(milliseconds=1))
            yield from pages_of(dataclasses.replace(flt, since=last, until=after))
            until = last

    return itertools.islice(rows(), limit)


# ---------------------------------------------------------------------------- parser


def _routing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", default="auto", choices=["bulk", "reason", "auto"])
    p.add_argument("--sensitive", action="store_true", help="pin to local; fail closed")
    p.add_argument("--model", default=None, help="an allowlisted destination name or 'auto'")
    p.add_argument("--tag", action="append", help="a tag (repeatable)")
    p.add_argument("--header", action="append", help="a header NAME=VALUE (repeatable)")


POLICY_HELP = "policy file (default: LF_POLICY, else the LF_* defaults)"


def version_text() -> str:
    """``llm-localfirst 0.3.0 (local-first router: ...) from <where it is installed>``.

    Names this project's commands and its location, so it cannot be mistaken for the
    unrelated ``llm-localfirst`` 0.2.0 on PyPI.
    """
    from . import __version__

    return (
        f"llm-localfirst {__version__} (local-first router: serve, mcp, policy, audit) "
        f"from {Path(__file__).resolve().parent}"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="llm-localfirst",
        description="Local-first LLM router.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # --version on one line
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("--policy", help=POLICY_HELP)
    # ``--policy`` is accepted after the command too (``serve --policy FILE``).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--policy", default=argparse.SUPPRESS, help=POLICY_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "doctor", parents=[common], help="config, allowlist, local up/down, audit location"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "route", parents=[common], help="where would this prompt run? (no model is called)"
    )
    p.add_argument("prompt", nargs="?", default=None)
    _routing_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_route)

    p = sub.add_parser("complete", parents=[common], help="run a completion")
    p.add_argument("prompt")
    p.add_argument("--source", help="a file to process, or - for stdin")
    p.add_argument("--system")
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--stream", action="store_true")
    p.add_argument(
        "--usage",
        action="store_true",
        help="print the token/spend tally for this call on stderr (as in 0.2.0)",
    )
    _routing_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_complete)

    p = sub.add_parser(
        "serve", parents=[common], help="OpenAI-compatible proxy with admin API and UI"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787)
    p.add_argument(
        "--insecure", action="store_true", help="allow a non-loopback bind without LF_PROXY_KEYS"
    )
    p.add_argument(
        "--workers",
        default="1",
        metavar="N",
        help="worker processes on the one port, or 'auto' for one per core "
        "(default 1); SIGHUP and /admin/reload reach every worker",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("mcp", parents=[common], help="MCP server (stdio by default)")
    p.add_argument("--transport", default="stdio", choices=["stdio", "http"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8788)
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print a Claude Desktop config that starts this installation's "
        "MCP server (absolute paths), then exit",
    )
    p.set_defaults(func=cmd_mcp)

    pol = sub.add_parser("policy", help="check or explain a policy file")
    psub = pol.add_subparsers(dest="policy_cmd", required=True)
    p = psub.add_parser("check", help="validate a policy file")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_policy_check)
    p = psub.add_parser("explain", help="which rule, which arm, why")
    p.add_argument("file")
    p.add_argument("--prompt", default=None)
    p.add_argument("--tokens", type=int, default=None, help="pretend input of N tokens")
    p.add_argument("--ab-key", default=None)
    p.add_argument("--meta", action="append", help="metadata KEY=VALUE (repeatable)")
    p.add_argument("--down", action="append", help="treat this destination as down")
    p.add_argument(
        "--label", default=None, help="the classifier label to assume (explain calls no model)"
    )
    _routing_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_policy_explain)

    bud = sub.add_parser("budget", parents=[common], help="cloud budgets shared by instances")
    bsub = bud.add_subparsers(dest="budget_cmd", required=True)
    p = bsub.add_parser(
        "status", parents=[common], help="spent, reserved and left of every budget this period"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_budget_status)

    aud = sub.add_parser("audit", help="read the audit log")
    asub = aud.add_subparsers(dest="audit_cmd", required=True)
    for name in ("tail", "export"):
        p = asub.add_parser(
            name,
            help="the newest rows"
            if name == "tail"
            else "every matching row as CSV or JSON Lines, newest first",
        )
        p.add_argument(
            "-n",
            "--limit",
            type=int,
            default=20 if name == "tail" else None,
            help="at most this many rows" + ("" if name == "tail" else " (default: all)"),
        )
        p.add_argument("--face")
        p.add_argument("--destination")
        p.add_argument("--outcome")
        p.add_argument("--since", help="ISO-8601 date or time, inclusive")
        p.add_argument("--until", help="ISO-8601 date or time, exclusive")
        if name == "tail":
            p.add_argument("--json", action="store_true")
        else:
            p.add_argument("--csv", dest="format", action="store_const", const="csv")
            p.add_argument("--json", dest="format", action="store_const", const="json")
            p.add_argument("-o", "--output")
            p.set_defaults(format="csv")
        p.set_defaults(func=cmd_audit)
    p = asub.add_parser("show", help="one row with its attempts")
    p.add_argument(
        "id",
        help="an audit id (from `audit tail`, an x-lf-decision-id header, a "
        "tool result...) or `latest`",
    )
    p.set_defaults(func=cmd_audit)
    p = asub.add_parser("verify", help="check the hash chains: exit 8 naming the first bad row")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit_verify)
    p = asub.add_parser(
        "report",
        help="where requests went, and whether any sensitive one "
        "left this machine (exit 4 if so, 8 if the chain is broken)",
    )
    p.add_argument("--since", help="ISO-8601 date or time, inclusive")
    p.add_argument("--until", help="ISO-8601 date or time, exclusive")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llm-localfirst`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return code
    except BrokenPipeError:
        # ``llm-localfirst audit tail | head -1``: the reader has what it wanted.
        _silence_stdout()
        return 0
    except LocalFirstError as exc:
        sys.stderr.write(f"llm-localfirst: {type(exc).__name__}: {exc}\n")
        return exit_code(exc)
    except ValueError as exc:  # e.g. an invalid audit filter
        sys.stderr.write(f"llm-localfirst: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests capture it)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
