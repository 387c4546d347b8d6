"""The ``notify`` activity against a real local webhook, and the redaction it relies on.

The webhook is a stdlib HTTP server on a free 127.0.0.1 port that records each request
and answers what the test asks for, so the real httpx client runs end to end.
"""

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import structlog
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from durable_agents._activities.notify import (
    Notifier,
    NotifyActivities,
    NotifySettings,
    retry_after,
)
from durable_agents._domain.approvals import ApprovalKind, ApprovalRequest, OnTimeout, args_digest
from durable_agents._domain.notifications import (
    SLACK_SECTION_LIMIT,
    Notification,
    NotificationKind,
    NotifyResult,
    approve_command,
    slack_payload,
)
from durable_agents._domain.redaction import REDACTED, redact, secret_values

pytestmark = pytest.mark.unit

OPENAI_KEY = "sk-proj-" + "A1b2C3d4" * 5
SECRET_PATH = "/services/T000/B000/XXXXSECRETPATH"


@dataclass
class Webhook:
    """What the fake webhook received, and what it answers next."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # The timeout test hangs up on purpose; anything else is a real fixture bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.requests.append({"headers": dict(self.headers), "json": json.loads(body)})
            time.sleep(hook.delay_s)
            self.send_response(hook.status)
            for name, value in hook.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(b"ok" if hook.status < 400 else b"no")

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()


def _notification(**args: Any) -> Notification:
    args = args or {"index": "idx_orders_old"}
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    request = ApprovalRequest(
        id="run-1:approval:1",
        kind=ApprovalKind.TOOL,
        tool="drop_index",
        args=args,
        args_digest=args_digest(args),
        what="drop index idx_orders_old",
        why="nothing uses it",
        risk="irreversible",
        requested_at=now,
        deadline=now + timedelta(hours=1),
        on_timeout=OnTimeout.ESCALATE,
    )
    return Notification(
        kind=NotificationKind.APPROVAL_ESCALATED,
        workflow_id="run-1",
        agent="db-tuner",
        goal="make the slow queries fast",
        title="Approval needed: drop_index",
        text="Nobody answered within the deadline.\nThe run waits one more hour.",
        ui_url="http://127.0.0.1:8233/namespaces/default/workflows/run-1",
        command=approve_command("run-1", request.id),
        request=request,
        attempted=["created idx_orders_customer", "timed the slow queries again"],
        details={"deadline": "2026-01-02T04:04:05Z"},
        sensitive_fields=["dsn"],
    )


async def _run(settings: NotifySettings, n: Notification) -> NotifyResult:
    acts = NotifyActivities(Notifier(settings))
    return await ActivityEnvironment().run(acts.notify, n)


async def test_webhook_body_is_slack_compatible_and_carries_the_notification(
    webhook: Webhook,
) -> None:
    n = _notification()
    result = await _run(NotifySettings(webhook.url, "tok-123"), n)
    assert result.delivered == ["log", "webhook"]
    [req] = webhook.requests
    body = req["json"]
    assert "\n" not in body["text"]
    assert n.command and n.command in body["text"] and str(n.ui_url) in body["text"]
    [block] = body["blocks"]
    assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    assert f"<{n.ui_url}|" in block["text"]["text"]
    assert Notification.model_validate(body["durable_agents"]) == n
    assert req["headers"]["Authorization"] == "Bearer tok-123"
    assert req["headers"]["Idempotency-Key"].endswith("/test")  # workflow id / activity id


async def test_without_webhook_only_the_log_is_delivered() -> None:
    with structlog.testing.capture_logs() as logs:
        result = await _run(NotifySettings(), _notification())
    assert result.delivered == ["log"]
    [entry] = logs
    assert entry["event"] == "notification" and entry["log_level"] == "info"
    assert entry["logger"] == "durable_agents.notify"
    assert entry["kind"] == "approval_escalated" and entry["workflow_id"] == "run-1"
    assert entry["command"] == approve_command("run-1", "run-1:approval:1")


async def test_server_error_is_retryable(webhook: Webhook) -> None:
    webhook.status = 500
    with pytest.raises(ApplicationError) as err:
        await _run(NotifySettings(webhook.url), _notification())
    assert err.value.type == "NotifyUnavailable" and not err.value.non_retryable
    assert "SECRETPATH" not in str(err.value)  # the webhook path is a credential


async def test_rate_limit_honours_retry_after(webhook: Webhook) -> None:
    webhook.status, webhook.headers = 429, {"Retry-After": "7"}
    with pytest.raises(ApplicationError) as err:
        await _run(NotifySettings(webhook.url), _notification())
    assert err.value.type == "NotifyUnavailable" and not err.value.non_retryable
    assert err.value.next_retry_delay == timedelta(seconds=7)


async def test_client_error_is_not_retryable(webhook: Webhook) -> None:
    webhook.status = 400
    with pytest.raises(ApplicationError) as err:
        await _run(NotifySettings(webhook.url), _notification())
    assert err.value.type == "NotifyRejected" and err.value.non_retryable


async def test_unreachable_or_slow_webhook_is_retryable(webhook: Webhook) -> None:
    with socket.socket() as s:  # a port nobody listens on once the socket closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ApplicationError) as err:
        await _run(NotifySettings(f"http://127.0.0.1:{port}{SECRET_PATH}"), _notification())
    assert err.value.type == "NotifyUnavailable" and "SECRETPATH" not in str(err.value)
    webhook.delay_s = 1.0
    with pytest.raises(ApplicationError, match="timed out") as err:
        await _run(NotifySettings(webhook.url, timeout_s=0.2), _notification())
    assert err.value.type == "NotifyUnavailable" and not err.value.non_retryable


async def test_secrets_are_redacted_in_webhook_and_log(webhook: Webhook) -> None:
    n = _notification(
        index="idx_old",
        api_key="plain-api-key-value",
        DB_Password="hunter2-password",
        note=f"use {OPENAI_KEY} for this",
        dsn="postgres://admin:pw@db/prod",
    )
    n = n.model_copy(update={"attempted": ["logged in with hunter2-password"]})
    with structlog.testing.capture_logs() as logs:
        await _run(NotifySettings(webhook.url), n)
    body, log = json.dumps(webhook.requests[0]["json"]), json.dumps(logs, default=str)
    for dumped in (body, log):
        for secret in ("plain-api-key-value", "hunter2-password", OPENAI_KEY, "admin:pw"):
            assert secret not in dumped
        assert "idx_old" in dumped  # ordinary arguments survive
    args = webhook.requests[0]["json"]["durable_agents"]["request"]["args"]
    assert args["api_key"] == args["DB_Password"] == args["dsn"] == REDACTED
    assert args["note"] == f"use {REDACTED} for this"
    assert logs[0]["request"]["args"]["dsn"] == REDACTED


def test_notification_survives_the_project_data_converter() -> None:
    n = _notification()
    conv = pydantic_data_converter.payload_converter
    [back] = conv.from_payloads(conv.to_payloads([n]), [Notification])
    assert back == n


def test_slack_section_stays_under_slack_limit_and_escapes_mrkdwn() -> None:
    n = _notification().model_copy(
        update={"text": "a <b> & c " * 500, "attempted": ["x" * 150] * 40}
    )
    section = slack_payload(n)["blocks"][0]["text"]["text"]
    assert len(section) <= SLACK_SECTION_LIMIT
    assert "&lt;b&gt; &amp; c" in section and "<b>" not in section
    assert "To act:" in section  # what to do is never the part that is cut
    assert (
        n.request is not None
        and "(then: escalate)" in slack_payload(n)["blocks"][0]["text"]["text"]
    )
    extended = n.model_copy(update={"request": n.request.model_copy(update={"extended": True})})
    assert "(then: deny)" in slack_payload(extended)["blocks"][0]["text"]["text"]


def test_settings_from_env_hide_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_NOTIFY_WEBHOOK", "https://hooks.example/services/SECRETPATH")
    monkeypatch.setenv("AGENT_NOTIFY_TOKEN", "tok-secret")
    settings = NotifySettings.from_env()
    assert settings.webhook_url == "https://hooks.example/services/SECRETPATH"
    assert settings.webhook_token == "tok-secret"
    assert "SECRETPATH" not in repr(settings) and "tok-secret" not in repr(settings)
    monkeypatch.delenv("AGENT_NOTIFY_WEBHOOK")
    assert Notifier(NotifySettings.from_env()).channels == ["log"]
    with pytest.raises(ValueError, match="http"):
        NotifySettings(webhook_url="ftp://hooks.example/x")


def test_retry_after_parses_seconds_and_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after("2.5") == timedelta(seconds=2.5)
    assert retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now) == timedelta(seconds=30)
    assert retry_after("99999") == timedelta(hours=1)
    assert retry_after(None) is retry_after("soon") is retry_after("0") is None


# -- domain.redaction ----------------------------------------------------------------------


def test_redact_common_secret_names_case_insensitive_substring() -> None:
    data = {
        "X-Api-Key": "a",
        "apikey": "b",
        "access_token": "c",
        "DB_PASSWORD": "d",
        "clientSecret": "e",
        "Authorization": "Bearer f",
        "name": "kept",
    }
    out = redact(data)
    assert out == {**dict.fromkeys(data, REDACTED), "name": "kept"}


def test_redact_keeps_token_counts() -> None:
    usage = {"max_tokens": 100, "tokens_used": 5, "input_tokens": 3, "token": "t"}
    assert redact(usage) == {**usage, "token": REDACTED}


def test_redact_recurses_and_does_not_mutate() -> None:
    data: dict[str, Any] = {"a": [{"password": "p"}, ("x", {"b": {"secret": 1}})], "n": 3}
    out = redact(data)
    assert out == {"a": [{"password": REDACTED}, ("x", {"b": {"secret": REDACTED}})], "n": 3}
    assert data["a"][0]["password"] == "p"


def test_redact_masks_openai_keys_anywhere() -> None:
    out = redact({"cmd": f"curl -H 'key: {OPENAI_KEY}'", "list": [OPENAI_KEY], OPENAI_KEY: 1})
    assert out == {"cmd": f"curl -H 'key: {REDACTED}'", "list": [REDACTED], REDACTED: 1}
    assert redact("pip install sk-learn") == "pip install sk-learn"


def test_redact_declared_fields_match_exactly() -> None:
    data = {"DSN": "postgres://x", "dsn_timeout": 5, "nested": [{"dsn": "y"}]}
    out = redact(data, ["dsn"])
    assert out == {"DSN": REDACTED, "dsn_timeout": 5, "nested": [{"dsn": REDACTED}]}


def test_secret_values_are_masked_in_free_text() -> None:
    data = {"args": {"password": "hunter2-pw", "pin": "12"}, "text": "tried hunter2-pw"}
    values = secret_values(data, ["pin"])
    assert values == {"hunter2-pw"}  # "12" is too short to mask safely
    assert redact(data, ["pin"], values)["text"] == f"tried {REDACTED}"
