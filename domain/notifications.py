"""Notifications: what a run tells people when it needs them, and how it reads in Slack.

A run notifies when an approval request escalates on timeout and when its spending
crosses the budget's soft fraction. The `Notification` is built by the workflow (pure
data, so it travels through the history) and delivered by the ``notify`` activity; the
Slack rendering lives here because it is pure formatting.
"""

import json
import shlex
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from durable_agents._domain.approvals import ApprovalRequest, OnTimeout
from durable_agents._domain.money import format_usd

# Slack refuses section text over 3000 characters; stay below with room for the ellipsis.
SLACK_SECTION_LIMIT = 2900
_TEXT_LIMIT = 1200
_ARGS_LIMIT = 600
_ATTEMPTED_SHOWN = 10


class NotificationKind(StrEnum):
    """Why a run is asking for attention."""

    APPROVAL_ESCALATED = "approval_escalated"
    BUDGET_SOFT_LIMIT = "budget_soft_limit"
    BUDGET_EXHAUSTED = "budget_exhausted"
    RUN_ESCALATED = "run_escalated"


class NotifyErrorType(StrEnum):
    """``ApplicationError.type`` values raised by the ``notify`` activity.

    Persisted in histories like `domain.errors.ErrorType`: do not rename.
    """

    UNAVAILABLE = "NotifyUnavailable"  # retryable: timeout, connection error, 5xx, 429
    REJECTED = "NotifyRejected"  # non-retryable: the webhook refused the message (4xx)


class Notification(BaseModel):
    """One message to the people watching a run (input of the ``notify`` activity)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    kind: NotificationKind
    workflow_id: str
    agent: str
    goal: str
    title: str = Field(description="One line: what happened.")
    text: str = Field(description="Markdown-ish body for a person.")
    ui_url: str | None = Field(default=None, description="The run in the Temporal Web UI.")
    command: str | None = Field(
        default=None, description="The exact `agentctl ...` command to act, when one applies."
    )
    request: ApprovalRequest | None = None
    attempted: list[str] = Field(default_factory=list, description="What the run tried so far.")
    details: dict[str, str] = Field(default_factory=dict)
    sensitive_fields: list[str] = Field(
        default_factory=list,
        description="Field names to redact besides the common secret names (the spec's).",
    )


class NotifyResult(BaseModel):
    """What the ``notify`` activity delivered."""

    delivered: list[str] = Field(description="Channel names, e.g. `log`, `webhook`.")


def approve_command(workflow_id: str, request_id: str, *, verb: str = "approve") -> str:
    """The shell command that approves (or with ``verb="reject"`` rejects) a request."""
    return f'agentctl {verb} {shlex.quote(workflow_id)} {shlex.quote(request_id)} --as "$USER"'


def extend_budget_command(workflow_id: str, usd: float) -> str:
    """The shell command that grants a run ``usd`` more dollars."""
    amount = format_usd(usd).removeprefix("$")  # never 0.00: the command must work
    return f"agentctl extend-budget {shlex.quote(workflow_id)} --usd {amount}"


def _esc(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reserves for links and mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _paragraph(n: Notification) -> str:
    """The top-level ``text``: one paragraph (phones and email digests show only this)."""
    body = " ".join(n.text.split())
    parts = [f"{_esc(n.title)} — {_esc(_cut(body, _TEXT_LIMIT))}"]
    parts.append(f"(agent {_esc(n.agent)}, run {_esc(n.workflow_id)})")
    if n.command:
        parts.append(f"To act: `{_esc(n.command)}`")
    if n.ui_url:
        parts.append(f"Web UI: {n.ui_url}")
    return " ".join(parts)


def _section(n: Notification) -> str:
    """The block text. What to do comes first so a cut only ever loses context."""
    lines = [f"*{_esc(n.title)}*", _esc(_cut(n.text, _TEXT_LIMIT))]
    if n.command:
        lines.append(f"*To act:* `{_esc(n.command)}`")
    if n.ui_url:
        lines.append(f"<{n.ui_url}|Open the run in the Temporal Web UI>")
    lines.append(f"*Agent:* `{_esc(n.agent)}` · *Run:* `{_esc(n.workflow_id)}`")
    lines.append(f"*Goal:* {_esc(_cut(n.goal, 300))}")
    if (r := n.request) is not None:
        lines.append(f"*Request* `{_esc(r.id)}` ({r.kind.value}): {_esc(r.what)}")
        lines.append(f"*Why:* {_esc(r.why)} · *Risk:* {_esc(r.risk)}")
        if r.tool:
            args = json.dumps(r.args, ensure_ascii=False, sort_keys=True, default=str)
            lines.append(f"*Tool:* `{_esc(r.tool)}` `{_esc(_cut(args, _ARGS_LIMIT))}`")
        # An escalated request was extended once; its next timeout denies (see `OnTimeout`).
        then = "deny" if r.extended and r.on_timeout is OnTimeout.ESCALATE else r.on_timeout
        lines.append(f"*Deadline:* {r.deadline.isoformat()} (then: {then})")
    if n.attempted:
        shown = n.attempted[-_ATTEMPTED_SHOWN:]
        header = "*Tried so far:*"
        if len(shown) < len(n.attempted):
            header += f" (the last {len(shown)} of {len(n.attempted)})"
        lines.append(header)
        lines += [f"• {_esc(_cut(a, 200))}" for a in shown]
    if n.details:
        lines += [f"*{_esc(k)}:* {_esc(_cut(v, 200))}" for k, v in sorted(n.details.items())]
    return _cut("\n".join(lines), SLACK_SECTION_LIMIT)


def slack_payload(n: Notification) -> dict[str, Any]:
    """The webhook body: Slack-compatible ``text`` and ``blocks``, plus the whole
    notification under ``durable_agents`` for receivers that are not Slack.

    ``n`` must already be redacted: this function only formats.
    """
    return {
        "text": _paragraph(n),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": _section(n)}}],
        "durable_agents": n.model_dump(mode="json"),
    }
