"""Quickstart: where requests run, bulk work on the local model, a sensitive call failing closed.

    python examples/quickstart.py            # your local model (LF_* settings, e.g. Ollama)
    python examples/quickstart.py --offline  # fake local and cloud models on loopback

With your own setup it uses ``Router.from_env()``: start Ollama (``ollama serve``;
``LF_LOCAL_BASE_URL`` and ``LF_LOCAL_MODEL_ID`` if it is not on the default port
with qwen2.5:7b). No cloud key is needed: nothing here goes to the cloud.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

try:
    from llm_localfirst import Kind, LocalFirstError, LocalUnavailable, Router
except ModuleNotFoundError:  # run by a Python that does not have the package
    sys.exit(
        f"llm_localfirst is not installed for {sys.executable}.\n"
        "Run this with the virtualenv's Python: .venv/bin/python examples/quickstart.py "
        "--offline\n(or `source .venv/bin/activate` first; `bash scripts/demo.sh` "
        "creates .venv)"
    )

RECORD = "Jane Roe, jane.roe@example.com, +44 20 7946 0958, card 4111 1111 1111 1111"
TEXT = (
    "The quarterly review covered hiring, the data-centre move and the budget. "
    "Hiring is on track; the move slips two weeks; the budget is unchanged."
)


def show_decision(label: str, router: Router, **kwargs: Any) -> None:
    try:
        print(f"  {label:<10} {router.decide(**kwargs)}")
    except LocalFirstError as exc:
        print(f"  {label:<10} refused: {exc.message}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--offline",
        action="store_true",
        help="run against fake local and cloud models (no model, no key)",
    )
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        if args.offline:
            from _offline import fake_models, offline_router

            local, cloud = stack.enter_context(fake_models())
            router = offline_router(local, cloud)
        else:
            router = Router.from_env()
        stack.callback(router.close)

        print("1. Where would each request run? (no model is called, no token spent)")
        show_decision("bulk", router, kind=Kind.BULK)
        show_decision("reason", router, kind="reason")
        show_decision("sensitive", router, sensitive=True)

        print("\n2. Bulk work prefers the local model (falling back to the cloud if it is down)")
        try:
            out = router.complete("Summarize this in one sentence.", source=TEXT, kind=Kind.BULK)
            print(
                f"  ran on {out.decision.target}:{out.decision.destination} "
                f"({out.usage.input_tokens} tokens in): {out.text}"
            )
        except LocalFirstError as exc:
            print(f"  failed: {exc.message}")

        print("\n3. A sensitive request never leaves the machine")
        if args.offline:
            local.stop()  # simulate the local model going down
            print("  (the fake local model is now stopped)")
        try:
            out = router.complete("Redact all PII from this record.", source=RECORD, sensitive=True)
            print(f"  ran on {out.decision.target}:{out.decision.destination}: {out.text}")
        except LocalUnavailable as exc:
            print(
                f"  refused, fail-closed: the record was NOT sent to the cloud (audit id "
                f"{exc.decision_id})"
            )

        if args.offline:
            print(f"\nrequests that reached the cloud model: {len(cloud.model_calls())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
