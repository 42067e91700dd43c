"""Manager-worker delegation with Pydantic AI: a cloud director, a local worker.

    python examples/manager_worker_pydantic_ai.py            # Claude directs, your model works
    python examples/manager_worker_pydantic_ai.py --offline  # scripted director, fake models
    python examples/manager_worker_pydantic_ai.py --file notes.txt --director openai:gpt-4.1-mini
    python examples/manager_worker_pydantic_ai.py --folder ~/contracts  # private delegation

The director (``--director``, default ``anthropic:claude-haiku-4-5``; needs
``pip install 'llm-localfirst[pydantic-ai,anthropic]'`` and ``ANTHROPIC_API_KEY``)
gets the ``delegate_to_worker`` tool from ``worker_toolset``. It hands the
token-heavy reading of the notes to the local worker (``Router.from_env()``: your
Ollama / vLLM / LM Studio / llama.cpp server) and keeps the final answer for itself.
The notes never reach the cloud through the worker; if the local model is down, the
director is told so and nothing is sent anywhere.

With ``--folder`` the notes are not pasted into the prompt at all: the folder is
the worker's only allowed root, the director names files in ``paths``, the worker
reads them itself, and only its answer (personal data redacted) reaches the director.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

from pydantic_ai import Agent, UserError

from llm_localfirst import Router
from llm_localfirst.adapters.pydantic_ai import worker_toolset
from llm_localfirst.agents import WorkerResult

ROLE = (
    "You are an engineering manager's assistant. Answer briefly. Use the local worker "
    "for reading long notes; keep judgement and the final answer to yourself."
)


def on_delegate(task: str, result: WorkerResult) -> None:
    print(
        f"  -> local worker ran {result.task_kind!r} on {result.destination} ({result.model}): "
        f"{result.chunks} piece(s), {result.tokens_in:,} tokens in, {result.tokens_out:,} out"
    )


async def run(router: Router, model: Any, notes: str, folder: Path | None = None) -> None:
    roots = [folder] if folder else []
    toolset = worker_toolset(router, on_delegate=on_delegate, roots=roots)
    director = Agent(model, instructions=ROLE, toolsets=[toolset])
    if folder:  # the director names the files; it never holds their text
        prompt = (
            f"Summarise every document in the folder {folder} (pass it in `paths`) "
            "and list each one's renewal or due dates."
        )
        print(f"director: {getattr(model, 'model_name', model)}; folder: {folder}")
    else:
        prompt = f"Which decisions were made, and who owns each?\n\n<notes>\n{notes}\n</notes>"
        print(f"director: {getattr(model, 'model_name', model)}; notes: {len(notes):,} characters")
    result = await director.run(prompt)
    print("\ndirector's answer:")
    print("  " + result.output.replace("\n", "\n  "))

    router.flush()
    saved = toolset.worker.savings()
    cost = "unknown" if saved.cloud_cost_usd is None else f"${saved.cloud_cost_usd:.4f}"
    print(
        f"\nprocessed locally: {saved.tokens_in + saved.tokens_out:,} tokens "
        f"(about {cost} on {saved.reference_model or 'the cloud'})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--offline",
        action="store_true",
        help="scripted director and fake local/cloud models (no model, no key)",
    )
    parser.add_argument(
        "--director",
        default="anthropic:claude-haiku-4-5",
        help="the director model, as Pydantic AI names it",
    )
    parser.add_argument("--file", type=Path, help="the notes to read (default: sample notes)")
    parser.add_argument(
        "--folder",
        type=Path,
        help="a folder the worker reads itself (private delegation; not offline)",
    )
    args = parser.parse_args(argv)
    if args.folder and args.offline:
        parser.error("--folder needs a real director (the offline one pastes notes)")
    folder = args.folder.expanduser().resolve() if args.folder else None

    from _offline import NOTES

    notes = args.file.read_text(encoding="utf-8") if args.file else NOTES
    with contextlib.ExitStack() as stack:
        if args.offline:
            from _offline import fake_models, offline_router, pydantic_ai_director

            local, cloud = stack.enter_context(fake_models())
            router, model = offline_router(local, cloud), pydantic_ai_director()
        else:
            router, model = Router.from_env(), args.director
        stack.callback(router.close)

        async def session() -> None:
            try:
                await run(router, model, notes, folder)
            finally:
                await router.aclose()  # the pooled connections opened on this event loop

        try:
            asyncio.run(session())
        except UserError as exc:  # e.g. no API key for the director model
            print(f"error: {exc}\n(try --offline)", file=sys.stderr)
            return 2
        if args.offline:
            print(
                f"model calls: local {len(local.model_calls())}, "
                f"cloud {len(cloud.model_calls())} (the notes never left the machine)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
