"""`Transcript`: what a person following a run sees of each model call, from the events
alone (no server): streamed text replaced by the run's answer, superseded attempts
dropped, and ``verified`` saying whether what streamed live was the answer."""

from durable_agents._domain.events import EventKind, RunEvent, Transcript, text_digest

ANSWER = "The answer, as the run recorded it."
LONG = "x" * 5000  # past the inline limit: call_finished carries a preview
PREVIEW = LONG[:200] + "…"


def tokens(text: str, attempt: int = 1) -> RunEvent:
    return RunEvent(kind=EventKind.TOKENS, call_id="c", attempt=attempt, text=text)


def finished(text: str, answer: str, attempt: int = 1) -> RunEvent:
    return RunEvent(
        kind=EventKind.CALL_FINISHED,
        call_id="c",
        attempt=attempt,
        text=text,
        sha256=text_digest(answer),
        end=len(answer),
    )


def seen(*events: RunEvent) -> tuple[str, bool, bool | None]:
    transcript = Transcript()
    for event in events:
        transcript.apply(event)
    call = transcript.calls["c"]
    return call.text, call.capped, call.verified


def test_the_answer_completes_what_streamed() -> None:
    assert seen(tokens(ANSWER[:10]), finished(ANSWER, ANSWER)) == (ANSWER, False, True)


def test_an_answer_nothing_of_which_streamed_is_shown_unchecked() -> None:
    assert seen(finished(ANSWER, ANSWER)) == (ANSWER, False, None)


def test_forged_text_is_replaced_by_the_answer_and_flagged() -> None:
    assert seen(tokens("FORGED"), finished(ANSWER, ANSWER)) == (ANSWER, False, False)


def test_a_superseded_attempt_is_dropped() -> None:
    retry = RunEvent(kind=EventKind.SUPERSEDED, call_id="c", attempt=2)
    events = (tokens("half an ans"), retry, tokens(ANSWER[:5], 2), finished(ANSWER, ANSWER, 2))
    assert seen(*events) == (ANSWER, False, True)
    # A late piece of the old attempt changes nothing.
    assert seen(tokens("x"), retry, tokens("late"), tokens(ANSWER, 2)) == (ANSWER, False, None)


def test_a_large_answer_streamed_whole_is_checked_against_its_digest() -> None:
    assert seen(tokens(LONG), finished(PREVIEW, LONG)) == (LONG, False, True)


def test_a_large_answer_streamed_in_part_says_the_rest_is_in_the_result() -> None:
    assert seen(tokens(LONG[:3000]), finished(PREVIEW, LONG)) == (LONG[:3000], True, None)


def test_a_large_answer_streamed_wrong_shows_the_preview_and_is_flagged() -> None:
    wrong = "y" * len(LONG)
    assert seen(tokens(wrong), finished(PREVIEW, LONG)) == (PREVIEW, True, False)


def test_a_large_answer_nothing_of_which_streamed_shows_its_preview() -> None:
    assert seen(finished(PREVIEW, LONG)) == (PREVIEW, True, None)


def test_a_run_recorded_with_token_batches_is_checked_as_before() -> None:
    """Before heartbeats, call_finished left out a streamed answer's text and length."""
    old = RunEvent(kind=EventKind.CALL_FINISHED, call_id="c", attempt=1, sha256=text_digest(ANSWER))
    assert seen(tokens(ANSWER), old) == (ANSWER, False, True)
    assert seen(tokens("FORGED"), old) == ("FORGED", False, False)


def test_text_read_before_its_call_started_is_kept() -> None:
    """A reader may find a call in the run's description before the query shows it began."""
    early = RunEvent(kind=EventKind.TOKENS, call_id="c", attempt=1, text="The", label="answer")
    started = RunEvent(kind=EventKind.CALL_STARTED, call_id="c", label="answer")
    transcript = Transcript()
    for event in (early, started, tokens(ANSWER[3:10]), finished(ANSWER, ANSWER)):
        transcript.apply(event)
    call = transcript.calls["c"]
    assert (call.label, call.text, call.verified) == ("answer", ANSWER, True)
