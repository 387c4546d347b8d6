"""Recorded replies go to the call they answered, whatever order the calls come in."""

import pytest

from durable_agents._activities.openai_provider import CALL_HEADER, call_header_value
from durable_agents._domain.eval_regression import RecordedReply
from durable_agents.testing.recorded_replies import RecordedReplies
from durable_agents.testing.scripted_model import RecordedRequest

pytestmark = pytest.mark.unit


def _asked(purpose: str, label: str | None) -> RecordedRequest:
    headers = {} if label is None else {CALL_HEADER.lower(): call_header_value(label)}
    return RecordedRequest("POST", "/v1/chat/completions", purpose, "m", {}, headers, 0.0)


def _text(replies: RecordedReplies, purpose: str, label: str | None) -> str:
    content = replies.answer(_asked(purpose, label)).content
    assert isinstance(content, str)
    return content


def test_calls_of_one_wave_get_their_own_reply_in_any_order() -> None:
    replies = RecordedReplies(
        [
            RecordedReply(purpose="evaluate", label="evaluate tâche-1", text="one"),
            RecordedReply(purpose="evaluate", label="evaluate t2", text="two"),
            RecordedReply(purpose="plan", label="plan #1", text="p1"),
            RecordedReply(purpose="plan", label="plan #2", text="p2"),
        ]
    )
    assert replies.purposes == {"evaluate", "plan"}
    assert _text(replies, "evaluate", "evaluate t2") == "two"
    assert _text(replies, "evaluate", "evaluate tâche-1") == "one"  # sent percent-encoded
    assert _text(replies, "plan", "plan #2") == "p2"
    assert _text(replies, "plan", "plan #1") == "p1"
    with pytest.raises(LookupError, match="no evaluate reply left for 'evaluate t2'"):
        replies.answer(_asked("evaluate", "evaluate t2"))


def test_replies_recorded_without_labels_are_served_in_order() -> None:
    replies = RecordedReplies(
        [RecordedReply(purpose="plan", text="first"), RecordedReply(purpose="plan", text="next")]
    )
    assert _text(replies, "plan", "plan #1") == "first"
    assert _text(replies, "plan", None) == "next"
