"""The API tool authors write against: a registry, a decorator and typed errors.

A tool is an ``async def`` taking one pydantic arguments model and a `ToolContext`. Its
`ToolSpec` (name, description, argument schema, side effect, retry policy, ...) is derived
from the function and the decorator's arguments, so a tool's contract is declared once,
next to its code::

    registry = ToolRegistry()

    class CreateIndexArgs(BaseModel):
        table: str
        columns: list[str]

    @registry.tool(side_effect=SideEffect.WRITE, resource_arg="table")
    async def create_index(args: CreateIndexArgs, ctx: ToolContext) -> dict[str, str]:
        \"\"\"Create an index on table(columns); a no-op if it exists.\"\"\"
"""

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack, get_type_hints

from pydantic import BaseModel

from durable_agents._domain.schema_check import schema_of
from durable_agents._domain.tools import (
    RetrySpec,
    SideEffect,
    ToolSpec,
)


class ToolInputError(Exception):
    """The arguments are wrong. Never retried; the planner is told why."""


class ToolUnavailable(Exception):  # noqa: N818 - the name is part of the DESIGN contract
    """A transient failure (service down, lock held). Retried with backoff."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ToolFailedError(Exception):
    """The tool ran and the outcome is a failure retrying cannot fix."""


class ToolOptions(TypedDict, total=False):
    """The options of `ToolRegistry.tool`: every `ToolSpec` field the decorator does not
    derive from the function (a test keeps the two equal). Defaults and meanings are
    `ToolSpec`'s."""

    name: str
    side_effect: SideEffect
    requires_approval: bool | None
    critical: bool
    resource_arg: str | None
    timeout_s: float
    heartbeat_timeout_s: float | None
    retry: RetrySpec
    cost_usd: float
    circuit_threshold: int
    circuit_reset_s: float
    task_queue: str | None
    local: bool


@dataclass(frozen=True)
class ToolContext:
    """What a tool knows about the call it serves."""

    idempotency_key: str
    workflow_id: str
    attempt: int
    data_dir: Path
    heartbeat: Callable[..., None] = field(default=lambda *details: None)


ToolFn = Callable[[Any, ToolContext], Awaitable[Any]]


@dataclass(frozen=True)
class RegisteredTool:
    """A tool's code together with its declared contract."""

    spec: ToolSpec
    args_model: type[BaseModel]
    fn: ToolFn


class ToolRegistry:
    """Tools by name. Dispatch is a dictionary lookup, never an ``if name ==`` chain."""

    def __init__(self, tools: Iterable[RegisteredTool] = ()) -> None:
        self._tools: dict[str, RegisteredTool] = {}
        for t in tools:
            self.add(t)

    def add(self, tool: RegisteredTool) -> None:
        """Register ``tool``; a second tool of the same name is an error."""
        if tool.spec.name in self._tools:
            raise ValueError(f"tool '{tool.spec.name}' is registered twice")
        self._tools[tool.spec.name] = tool

    def merge(self, other: "ToolRegistry") -> None:
        """Add every tool of ``other``."""
        for t in other._tools.values():
            self.add(t)

    def tool(self, **options: Unpack["ToolOptions"]) -> Callable[[ToolFn], ToolFn]:
        """Decorator registering an ``async def tool(args: Model, ctx) -> result``.

        ``options`` are `ToolSpec`'s fields (see `ToolOptions`); the name defaults to the
        function's, the description is its docstring and the argument schema comes from
        its pydantic model. An unknown option is an error naming the known ones.
        """

        def register(fn: ToolFn) -> ToolFn:
            args_model = _args_model(fn)
            fields = {"name": fn.__name__, **options}
            unknown = sorted(set(fields) - set(ToolOptions.__annotations__))
            if unknown:
                known = ", ".join(sorted(ToolOptions.__annotations__))
                raise TypeError(
                    f"tool {fn.__name__!r}: unknown option {', '.join(unknown)}; "
                    f"the options are ToolSpec's fields: {known}"
                )
            spec = ToolSpec(
                description=inspect.cleandoc(fn.__doc__ or ""),
                args_schema=schema_of(args_model),
                **fields,
            )
            self.add(RegisteredTool(spec=spec, args_model=args_model, fn=fn))
            return fn

        return register

    def get(self, name: str) -> RegisteredTool:
        """The tool ``name``, or a `ToolInputError` listing the known tools."""
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(sorted(self._tools)) or "none"
            raise ToolInputError(f"unknown tool '{name}'; known tools: {known}") from None

    def specs(self, names: Iterable[str] | None = None) -> list[ToolSpec]:
        """The specs of the named tools (all when ``names`` is None), in the order asked."""
        if names is None:
            return [t.spec for t in self._tools.values()]
        return [self.get(n).spec for n in names]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)


def _args_model(fn: ToolFn) -> type[BaseModel]:
    params = list(inspect.signature(fn).parameters)
    hints = get_type_hints(fn)
    model = hints.get(params[0]) if params else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(
            f"tool {getattr(fn, '__name__', fn)!r}: the first parameter must be annotated "
            "with a pydantic model of the arguments"
        )
    if not inspect.cleandoc(fn.__doc__ or "").strip():
        raise TypeError(f"tool {fn.__name__!r} needs a docstring: the planner reads it")
    return model
