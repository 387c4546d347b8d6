"""Reading what a caller sent: a payload is parsed into its model, or refused with why.

Starts, updates and signals take raw values (never typed parameters the SDK would fail to
decode), so that nothing a caller sends (the wrong shape, a refused encoding, too many
payloads) fails a workflow task; each receiver turns `MalformedPayload` into its own
refusal.
"""

from typing import Any, TypeVar

import pydantic

from durable_agents._domain.refused import refused_reason

M = TypeVar("M", bound=pydantic.BaseModel)


class MalformedPayload(ValueError):  # noqa: N818 - the reason, caught by each receiver
    """The payload is not a valid message; the text says what is wrong."""


class WrongArity:
    """A message that carried no payload or several, instead of one."""

    def __init__(self, count: int) -> None:
        self.count = count


def one_payload(args: tuple[Any, ...]) -> Any:
    """The single payload a message must carry (a `WrongArity` otherwise)."""
    return args[0] if len(args) == 1 else WrongArity(len(args))


def parse_payload(model: type[M], raw: Any, what: str) -> M:
    """``raw`` as ``model``, or `MalformedPayload` naming the first problem."""
    if isinstance(raw, WrongArity):
        raise MalformedPayload(f"expected one payload, got {raw.count}")
    refused = refused_reason(raw)
    if refused:
        raise MalformedPayload(refused)
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}" for e in err.errors()[:3]
        )
        raise MalformedPayload(
            f"malformed {what}: {problems} ({err.error_count()} error(s))"
        ) from None
    except (TypeError, ValueError) as err:
        raise MalformedPayload(f"malformed {what}: {str(err)[:200]}") from None
