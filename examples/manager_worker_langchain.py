"""Manager-worker delegation with LangChain: a cloud director, a local worker, a plain agent loop.

    python examples/manager_worker_langchain.py            # an OpenAI director, your local worker
    python examples/manager_worker_langchain.py --offline  # scripted director, fake models
    python examples/manager_worker_langchain.py --file notes.txt --director gpt-4.1
    python examples/manager_worker_langchain.py --folder ~/contracts  # private delegation

The director is ``langchain_openai.ChatOpenAI`` (``--director``, default
``gpt-4.1-mini``; needs ``pip install langchain-openai`` and ``OPENAI_API_KEY``; the
offline run needs neither). Any chat model with ``bind_tools`` works the same way
(``langchain_anthropic.ChatAnthropic`` for Claude). It gets the ``delegate_to_worker``
tool from ``worker_tool`` and the director guidance as its system message. The loop
below is the whole agent: call the model, run the tool calls it asks for, feed the
results back, stop when it answers. A failed delegation comes back as a
``ToolMessage`` with ``status="error"``, so the loop never breaks.

With ``--folder`` nothing is pasted: the folder is the worker's allowed root, the
director names files in ``paths``, and only the worker's gated answer comes back.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, ToolMessage

from llm_localfirst import Router
from llm_localfirst.adapters.langchain import worker_tool
from llm_localfirst.agents import DIRECTOR_GUIDANCE, WorkerResult

ROLE = (
    "You are an engineering manager's assistant. Answer briefly. Use the local worker "
    "for reading long notes; keep judgement and the final answer to yourself."
)
MAX_TURNS = 8


def on_delegate(task: str, result: WorkerResult) -> None:
    print(
        f"  -> local worker ran {result.task_kind!r} on {result.destination} ({result.model}): "
        f"{result.chunks} piece(s), {result.tokens_in:,} tokens in, {result.tokens_out:,} out"
    )


def ask(router: Router, chat_model: Any, question: str, roots: list[Path] | None = None) -> str:
    """The agent loop: the director calls tools until it answers."""
    tool = worker_tool(router, on_delegate=on_delegate, roots=roots or [])
    director = chat_model.bind_tools([tool])
    messages: list[BaseMessage] = [
        SystemMessage(f"{ROLE}\n\n{DIRECTOR_GUIDANCE}"),
        HumanMessage(question),
    ]
    for _ in range(MAX_TURNS):
        reply = director.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return str(reply.text)
        for call in reply.tool_calls:
            result: ToolMessage = tool.invoke(call)  # sync: runs on the router's own loop
            if result.status == "error":
                print(f"  -> delegation failed; the director reads: {result.content}")
            messages.append(result)
    return "(the director did not answer within the turn limit)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--offline",
        action="store_true",
        help="scripted director and fake local/cloud models (no model, no key)",
    )
    parser.add_argument("--director", default="gpt-4.1-mini", help="the OpenAI director model")
    parser.add_argument("--file", type=Path, help="the notes to read (default: sample notes)")
    parser.add_argument(
        "--folder",
        type=Path,
        help="a folder the worker reads itself (private delegation; not offline)",
    )
    args = parser.parse_args(argv)
    if args.folder and args.offline:
        parser.error("--folder needs a real director (the offline one pastes notes)")

    from _offline import NOTES

    notes = args.file.read_text(encoding="utf-8") if args.file else NOTES
    with contextlib.ExitStack() as stack:
        if args.offline:
            from _offline import fake_models, langchain_director, offline_router

            local, cloud = stack.enter_context(fake_models())
            router, chat_model = offline_router(local, cloud), langchain_director()
        else:
            from langchain_openai import ChatOpenAI

            if not os.environ.get("OPENAI_API_KEY"):
                print(
                    "error: set OPENAI_API_KEY for the director (or try --offline)", file=sys.stderr
                )
                return 2
            router, chat_model = Router.from_env(), ChatOpenAI(model=args.director)
        stack.callback(router.close)

        name = "scripted (offline)" if args.offline else args.director
        if args.folder:
            folder = args.folder.expanduser().resolve()
            print(f"director: {name}; folder: {folder}")
            answer = ask(
                router,
                chat_model,
                f"Summarise every document in the folder {folder} (pass it in `paths`) "
                "and list each one's renewal or due dates.",
                roots=[folder],
            )
        else:
            print(f"director: {name}; notes: {len(notes):,} characters")
            answer = ask(
                router,
                chat_model,
                f"Which decisions were made, and who owns each?\n\n<notes>\n{notes}\n</notes>",
            )
        print("\ndirector's answer:")
        print("  " + answer.replace("\n", "\n  "))
        if args.offline:
            print(
                f"\nmodel calls: local {len(local.model_calls())}, "
                f"cloud {len(cloud.model_calls())} (the notes never left the machine)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
