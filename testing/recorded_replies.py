"""A recorded run's model replies, served to a re-run call by call.

Each reply goes to the call it answered in the recording: the same purpose and label
(``plan #2``, ``evaluate t1``, sent by the model activity in its ``X-Agent-Call``
header), in order among calls of one label. Tasks of one wave run at the same time, so
their ``evaluate`` and ``execute`` calls may reach the model in another order than they
did when the run was recorded; their labels (one per task id) still tell them apart.
Replies recorded without a label (older runs) are served in order per purpose.
"""

from collections import deque
from collections.abc import Iterable
from urllib.parse import unquote

from durable_agents._activities.openai_provider import CALL_HEADER
from durable_agents._domain.eval_regression import RecordedReply
from durable_agents.testing.scripted_model import RecordedRequest, Reply


class RecordedReplies:
    """Replies keyed by the call they answered; `answer` is a `ScriptedModelServer`
    responder."""

    def __init__(self, replies: Iterable[RecordedReply]) -> None:
        self._by_call: dict[tuple[str, str], deque[RecordedReply]] = {}
        for reply in replies:
            self._by_call.setdefault((reply.purpose, reply.label), deque()).append(reply)

    @property
    def purposes(self) -> set[str]:
        """The purposes the recorded run asked the model for."""
        return {purpose for purpose, _ in self._by_call}

    def answer(self, request: RecordedRequest) -> Reply:
        """The recorded reply to this call; `LookupError` when the recording has none left
        (the scripted model then refuses the call, and the re-run reports it)."""
        label = unquote(request.headers.get(CALL_HEADER.lower(), ""))
        for key in ((request.purpose, label), (request.purpose, "")):
            queue = self._by_call.get(key)
            if queue:
                reply = queue.popleft()
                return Reply.text(reply.text, usage=(reply.input_tokens, reply.output_tokens))
        raise LookupError(f"the recorded run has no {request.purpose} reply left for '{label}'")
