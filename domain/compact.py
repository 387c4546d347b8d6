"""Models that serialize without the fields left at their default.

Runs record many small models in their histories (steps, tasks, model calls and
results); a field at its default decodes to the same value, so it is left out. Fields in
``always_shown`` stay for readers of the JSON (a task's id and kind).
"""

from functools import cache
from typing import Any, ClassVar

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer


class CompactModel(BaseModel):
    """A `BaseModel` whose JSON leaves out fields equal to their default."""

    always_shown: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _without_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        defaults = _defaults(type(self))
        return {
            k: v
            for k, v in data.items()
            if k in self.always_shown or k not in defaults or v != defaults[k]
        }


@cache
def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Each optional field's default (required fields have none)."""
    return {
        name: field.get_default(call_default_factory=True)
        for name, field in model.model_fields.items()
        if not field.is_required()
    }
