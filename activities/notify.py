"""The ``notify`` activity: tell people a run needs them.

Channels: the structured log always (logger ``durable_agents.notify``, one ``info``
event), and a webhook when ``AGENT_NOTIFY_WEBHOOK`` is set: a JSON POST that Slack's
incoming webhooks accept as is and that any other receiver can parse (the whole
notification travels under ``durable_agents``). Everything is redacted before it leaves
the process, so a secret in a tool's arguments never reaches a chat or a log.

Failures are typed for Temporal's retry policy: an unreachable or overloaded webhook
(timeout, connection error, 5xx, 408, 429) raises the retryable ``NotifyUnavailable``,
honouring ``Retry-After``; any other refusal raises ``NotifyRejected``, non-retryable,
because sending the same body again cannot fix it.
"""

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from durable_agents._domain import contract
from durable_agents._domain.notifications import (
    Notification,
    NotifyErrorType,
    NotifyResult,
    slack_payload,
)
from durable_agents._domain.redaction import mask_keys, redact, secret_values

LOGGER_NAME = "durable_agents.notify"
# A server may ask for any delay; past this the escalation would be stale anyway, and the
# workflow's schedule-to-close timeout is the real bound.
MAX_RETRY_AFTER = timedelta(hours=1)
_RETRYABLE_STATUS = frozenset({408, 429})


@dataclass(frozen=True)
class NotifySettings:
    """Where notifications go. Both secrets are kept out of ``repr`` (Slack webhook URLs
    are credentials too).

    Environment (read by `from_env` only): ``AGENT_NOTIFY_WEBHOOK`` (an http(s) URL;
    unset: log only) and ``AGENT_NOTIFY_TOKEN`` (sent as ``Authorization: Bearer``).
    """

    webhook_url: str | None = field(default=None, repr=False)
    webhook_token: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        # Fail at worker start, not at the first escalation hours later.
        if self.webhook_url is not None and urlsplit(self.webhook_url).scheme not in (
            "http",
            "https",
        ):
            raise ValueError("AGENT_NOTIFY_WEBHOOK must be an http:// or https:// URL")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {self.timeout_s}")

    @classmethod
    def from_env(cls) -> "NotifySettings":
        """Read the environment (called by entry points, never at import time)."""
        return cls(
            webhook_url=os.environ.get("AGENT_NOTIFY_WEBHOOK") or None,
            webhook_token=os.environ.get("AGENT_NOTIFY_TOKEN") or None,
        )


def redacted(n: Notification) -> Notification:
    """``n`` with secrets masked everywhere, and the spec's sensitive fields blanked in the
    request's arguments and the details (the only free-form maps a notification has)."""
    data = n.model_dump(mode="json")
    args = data["request"]["args"] if data["request"] is not None else {}
    # Secret values are also masked where they were copied into free text (the title,
    # the body, the list of attempts).
    values = secret_values(data) | secret_values([args, data["details"]], n.sensitive_fields)
    data = redact(data, (), values)
    if data["request"] is not None:
        data["request"]["args"] = redact(data["request"]["args"], n.sensitive_fields, values)
    data["details"] = redact(data["details"], n.sensitive_fields, values)
    return Notification.model_validate(data)


class Notifier:
    """Delivers notifications to the configured channels."""

    def __init__(self, settings: NotifySettings | None = None) -> None:
        self._settings = settings or NotifySettings()

    @property
    def channels(self) -> list[str]:
        """The channel names a notification goes to, in delivery order."""
        return ["log", "webhook"] if self._settings.webhook_url else ["log"]

    async def send(
        self, n: Notification, *, attempt: int = 1, idempotency_key: str | None = None
    ) -> NotifyResult:
        """Redact ``n``, log it, then POST it to the webhook if there is one.

        The log comes first so a person can find the notification even when the webhook
        is down; each retry logs again, with its ``attempt`` number.
        """
        safe = redacted(n)
        self._log(safe, attempt)
        if self._settings.webhook_url is not None:
            await self._post(self._settings.webhook_url, slack_payload(safe), idempotency_key)
        return NotifyResult(delivered=self.channels)

    def _log(self, n: Notification, attempt: int) -> None:
        # A fresh logger per call: a cached one would escape structlog's test capture and
        # any re-configuration done after the worker started.
        fields = n.model_dump(mode="json", exclude={"sensitive_fields"})
        structlog.get_logger(LOGGER_NAME).info(
            "notification", logger=LOGGER_NAME, attempt=attempt, channels=self.channels, **fields
        )

    async def _post(self, url: str, body: dict[str, Any], idempotency_key: str | None) -> None:
        headers = {"User-Agent": "durable-agents-notify"}
        if self._settings.webhook_token:
            headers["Authorization"] = f"Bearer {self._settings.webhook_token}"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        # Errors name the host only: the path of a Slack webhook is its secret. They are
        # raised `from None` because a chained httpx error could carry the full URL into
        # the workflow history.
        host = urlsplit(url).hostname or "webhook"
        try:
            async with httpx.AsyncClient(timeout=self._settings.timeout_s) as client:
                resp = await client.post(url, json=body, headers=headers)
        except httpx.TimeoutException:
            raise ApplicationError(
                f"notify webhook {host} timed out after {self._settings.timeout_s}s",
                type=NotifyErrorType.UNAVAILABLE,
            ) from None
        except httpx.HTTPError as err:
            reason = mask_keys(str(err).replace(url, host)) or type(err).__name__
            raise ApplicationError(
                f"notify webhook {host} unreachable: {reason}", type=NotifyErrorType.UNAVAILABLE
            ) from None
        if resp.is_success:
            return
        snippet = mask_keys(resp.text[:200])
        message = f"notify webhook {host} answered {resp.status_code}: {snippet}"
        if resp.status_code >= 500 or resp.status_code in _RETRYABLE_STATUS:
            raise ApplicationError(
                message,
                type=NotifyErrorType.UNAVAILABLE,
                next_retry_delay=retry_after(resp.headers.get("Retry-After")),
            )
        raise ApplicationError(message, type=NotifyErrorType.REJECTED, non_retryable=True)


def retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """The delay a ``Retry-After`` header asks for (seconds or an HTTP date), capped at
    `MAX_RETRY_AFTER`; None when absent, unparsable or already past."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds <= 0:
        return None
    return min(timedelta(seconds=seconds), MAX_RETRY_AFTER)


@dataclass
class NotifyActivities:
    """Holds the notifier; register ``activities()`` on a worker."""

    notifier: Notifier

    def activities(self) -> list[Any]:
        """The activity callables to register on a worker."""
        return [self.notify]

    @activity.defn(name=contract.NOTIFY)
    async def notify(self, n: Notification) -> NotifyResult:
        """Deliver ``n`` to every configured channel (see the module docstring)."""
        info = activity.info()
        key = f"{info.workflow_id or 'standalone'}/{info.activity_id}"
        return await self.notifier.send(n, attempt=info.attempt, idempotency_key=key)
