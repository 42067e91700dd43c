"""``DelegateArgs``: the one argument model of ``delegate_to_worker``, for every face.

The MCP tool, the Pydantic AI toolset and the LangChain tool all describe and
validate their arguments with :class:`DelegateArgs`, so a director sees the same
schema (names, types, descriptions, task kinds) wherever it runs, and a value
is refused the same way everywhere. The Worker still validates what only it can
judge (a task kind's requirements, limits, paths against roots).

It must never import a framework or perform I/O.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

from .director import PARAMETER_DESCRIPTIONS as _D
from .tasks import TaskKind

__all__ = ["DelegateArgs", "parameters"]


class DelegateArgs(BaseModel):
    """The arguments of ``delegate_to_worker`` (the schema the director model sees)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    task: str = Field(description=_D["task"])
    source: str = Field(default="", description=_D["source"])
    paths: list[str] | None = Field(default=None, description=_D["paths"])
    documents: list[str] | None = Field(default=None, description=_D["documents"])
    task_kind: str = Field(
        default="freeform",
        description=_D["task_kind"],
        json_schema_extra={"enum": [k.value for k in TaskKind]},
    )
    # ``schema`` would shadow ``BaseModel.schema``; the wire name is still ``schema``.
    schema_: dict[str, Any] | None = Field(default=None, alias="schema", description=_D["schema"])
    labels: list[str] | None = Field(default=None, description=_D["labels"])
    target_language: str | None = Field(default=None, description=_D["target_language"])
    max_tokens: int | None = Field(default=None, ge=1, description=_D["max_tokens"])

    def worker_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``Worker.arun`` (besides ``task`` and ``source``)."""
        return {
            "paths": self.paths,
            "documents": self.documents,
            "task_kind": self.task_kind,
            "schema": self.schema_,
            "labels": self.labels,
            "target_language": self.target_language,
            "max_tokens": self.max_tokens,
        }


def parameters() -> list[inspect.Parameter]:
    """:class:`DelegateArgs` as keyword parameters (wire names), for a tool function's
    ``__signature__`` where a framework builds its schema from a signature (MCP)."""
    out: list[inspect.Parameter] = []
    for name, info in DelegateArgs.model_fields.items():
        wire = info.alias or name
        field = FieldInfo.merge_field_infos(
            info, alias=None, validation_alias=None, serialization_alias=None
        )
        field.alias = None
        default = inspect.Parameter.empty if info.is_required() else info.default
        annotation: Any = info.annotation
        if name == "task_kind":  # the same enum, checked by the schema before the tool runs
            annotation = Literal.__getitem__(tuple(k.value for k in TaskKind))
            field.json_schema_extra = None
        out.append(
            inspect.Parameter(
                wire,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[annotation, field],
            )
        )
    return out
