"""The permission matrix: role x tool pattern x resource pattern -> allow / deny / ask.

Patterns are shell-style (``fnmatch``). Among the rules that match a call, the strictest
wins (deny over ask over allow), so adding an allow rule can never undo a deny. A call
that no rule matches falls to the default, which is deny.
"""

from enum import StrEnum
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict


class Effect(StrEnum):
    """The outcome of a permission check."""

    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


_STRICTNESS = {Effect.ALLOW: 0, Effect.ASK: 1, Effect.DENY: 2}


class PermissionRule(BaseModel):
    """One row of the matrix."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    role: str = "*"
    tool: str = "*"
    resource: str = "*"
    effect: Effect

    def matches(self, role: str, tool: str, resource: str) -> bool:
        """Whether this rule applies to the call."""
        return (
            fnmatchcase(role, self.role)
            and fnmatchcase(tool, self.tool)
            and fnmatchcase(resource, self.resource)
        )


class PermissionMatrix(BaseModel):
    """All rules of an agent plus the default for calls no rule matches."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    rules: list[PermissionRule] = []
    default: Effect = Effect.DENY

    @classmethod
    def allow_all(cls) -> "PermissionMatrix":
        """Every tool for every role: for agents whose tools are all safe."""
        return cls(rules=[PermissionRule(effect=Effect.ALLOW)])

    def decide(self, role: str, tool: str, resource: str = "*") -> Effect:
        """The strictest effect among matching rules, else the default."""
        effects = [r.effect for r in self.rules if r.matches(role, tool, resource)]
        if not effects:
            return self.default
        return max(effects, key=_STRICTNESS.__getitem__)
