"""Loading a policy: YAML (duplicate keys refused) or data, with precise errors.

This module owns turning text or a file into a validated :class:`Policy`, naming the
file, the rule and the field of every problem. It must never decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import PolicyError
from .schema import MAX_POLICY_BYTES, Policy

# --------------------------------------------------------------------------- loading


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses duplicate mapping keys (PyYAML silently keeps the last).

    PyYAML is imported here, not at module import: deciding never needs it.
    """
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        loader.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if key in mapping:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {line})", key_node.start_mark
                )
            mapping[key] = loader.construct_object(value_node)
        return mapping

    UniqueKeyLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping
    )
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _locate(data: Any, loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location with the rule's name: ``rules[2] 'x': to[0].weight``."""
    head, tail = "", ""
    node = data
    for part in loc:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            label = f"[{part}]"
            if not tail and isinstance(node, dict) and isinstance(node.get("name"), str):
                head, tail = f"{head}{label} {node['name']!r}", ":"
                continue
        else:
            node = node.get(part) if isinstance(node, dict) else None
            label = f".{part}" if (head and not tail) or tail not in ("", ":") else str(part)
            if tail == ":":
                label = f" {part}"
        if tail:
            tail += label
        else:
            head += label
    return (head + tail).removesuffix(":") or "(top level)"


def parse_policy(
    text: str, *, source: str = "<string>", prices: Mapping[str, tuple[float, float]] | None = None
) -> Policy:
    """Parse and validate a YAML policy.

    Raises:
        PolicyError: malformed YAML, duplicate keys, unknown keys, bad references,
            zero weights, a public host declared local; each problem names its place.
    """
    if len(text) > MAX_POLICY_BYTES:
        raise PolicyError(f"the file is larger than {MAX_POLICY_BYTES} bytes", source=source)
    try:
        data = _load_yaml(text)
    except Exception as exc:  # yaml.YAMLError and its subclasses; yaml is imported lazily
        if not type(exc).__module__.startswith("yaml"):
            raise
        raise PolicyError(f"malformed YAML: {exc}".replace("\n", " "), source=source) from None
    if not isinstance(data, dict):
        raise PolicyError(
            "the top level must be a mapping (version, destinations, rules, default)", source=source
        )
    return policy_from_data(data, source=source, prices=prices)


def policy_from_data(
    data: dict[str, Any],
    *,
    source: str = "<data>",
    prices: Mapping[str, tuple[float, float]] | None = None,
) -> Policy:
    """Validate already-parsed policy data.

    Args:
        data: The parsed policy.
        source: Where it came from, for messages.
        prices: ``LF_PRICES``: destination name -> (input, output) USD per million
            tokens, set on those destinations before validation (unknown names ignored).

    Raises:
        PolicyError: with one problem per invalid field.
    """
    dests = data.get("destinations")
    if prices and isinstance(dests, dict):
        data = {
            **data,
            "destinations": {
                name: (
                    {**d, "price": {"input": prices[name][0], "output": prices[name][1]}}
                    if name in prices and isinstance(d, dict)
                    else d
                )
                for name, d in dests.items()
            },
        }
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{_locate(data, tuple(err['loc']))}: {msg}")
        raise PolicyError(
            f"{len(problems)} problem(s)", source=source, problems=tuple(problems)
        ) from None


def load_policy(
    path: str | Path, *, prices: Mapping[str, tuple[float, float]] | None = None
) -> Policy:
    """Read and validate a policy file (``prices``: see :func:`policy_from_data`).

    Raises:
        PolicyError: the file is missing, unreadable or invalid.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read the file: {exc}", source=str(p)) from None
    return parse_policy(text, source=str(p), prices=prices)


# --------------------------------------------------------------------------- decide
