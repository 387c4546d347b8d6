"""Keep secrets out of anything a person or a log will read.

`redact` walks dicts, lists and tuples and returns a copy in which:

* the value of every key that *names* a secret is replaced by ``"[redacted]"``: a key
  matches when, lowercased and stripped of ``_``/``-``/spaces, it contains one of the
  common secret names (``api_key``, ``apikey``, ``token``, ``password``, ``secret``,
  ``authorization``, ...), or when it equals (case-insensitively) one of the names the
  caller declares sensitive, e.g. an agent spec's ``sensitive_fields``;
* every substring that looks like an OpenAI key (``sk-...``) is masked in every string,
  keys included, wherever it appears, because keys leak through free text (an error
  message, a shell command) far more often than through a field called ``api_key``;
* optionally, literal secret values (collected by `secret_values`) are masked in every
  string, for when a password was copied from its field into a sentence.

Pure and deterministic: safe inside workflows.
"""

import re
from collections.abc import Iterable
from typing import Any, TypeVar, cast

REDACTED = "[redacted]"

# Normalised (see `_normalise`) fragments of key names that hold secrets.
SECRET_KEY_PARTS = (
    "apikey",
    "token",
    "password",
    "passwd",
    "secret",
    "authorization",
    "credential",
    "privatekey",
)

# "tokens" (plural) is this project's budget vocabulary (`max_tokens`, `tokens_used`,
# `input_tokens`): counts, not credentials. Redacting them would blank out exactly the
# numbers a budget notification exists to show, so "token" only matches when it is not
# followed by "s".
_TOKEN_COUNT = re.compile(r"token(?!s)")

# OpenAI keys: `sk-` then a long run of key characters (also `sk-proj-...`,
# `sk-svcacct-...`). Twenty characters at least, so prose such as "sk-learn" survives.
_OPENAI_KEY = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}")

# Shorter values found under secret keys are not masked elsewhere (see `secret_values`).
MIN_SECRET_LENGTH = 6

T = TypeVar("T")


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", name.lower())


def is_secret_key(name: str, sensitive: Iterable[str] = ()) -> bool:
    """Whether a field called ``name`` holds a secret (see the module docstring)."""
    norm = _normalise(name)
    if name.lower() in {s.lower() for s in sensitive}:
        return True
    for part in SECRET_KEY_PARTS:
        if part == "token":
            if _TOKEN_COUNT.search(norm):
                return True
        elif part in norm:
            return True
    return False


def mask_keys(text: str) -> str:
    """``text`` with every OpenAI-looking key replaced by ``[redacted]``."""
    return _OPENAI_KEY.sub(REDACTED, text)


def secret_values(obj: Any, sensitive: Iterable[str] = ()) -> set[str]:
    """The strings stored under secret keys anywhere in ``obj``.

    Pass them to `redact` as ``values`` to also mask them where they were copied into
    free text (a password echoed in an error message or a summary of attempts). Strings
    shorter than `MIN_SECRET_LENGTH` are left out: masking every "on" or "1" in a message
    would destroy it without protecting anything.
    """
    names = frozenset(s.lower() for s in sensitive)
    found: set[str] = set()

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, str):
            if secret and len(node) >= MIN_SECRET_LENGTH:
                found.add(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, secret or (isinstance(key, str) and is_secret_key(key, names)))
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value, secret)

    walk(obj, False)
    return found


def redact(obj: T, sensitive: Iterable[str] = (), values: Iterable[str] = ()) -> T:
    """A copy of ``obj`` with secret values replaced by ``"[redacted]"``.

    ``obj`` is any JSON-like value (dicts, lists, tuples, strings, numbers, None); other
    objects are returned unchanged, so dump pydantic models first
    (``model_dump(mode="json")``). ``sensitive`` adds field names to redact, matched
    exactly but case-insensitively (a declared name like ``"dsn"`` must not also blank
    out ``"dsn_timeout"``). ``values`` are literal secrets (see `secret_values`) masked
    inside every string.
    """
    names = frozenset(s.lower() for s in sensitive)
    # Longest first, so a secret that contains another one is masked whole.
    literals = tuple(sorted({v for v in values if v}, key=len, reverse=True))
    return cast(T, _redact(obj, names, literals))


def _mask(text: str, literals: tuple[str, ...]) -> str:
    for literal in literals:
        text = text.replace(literal, REDACTED)
    return mask_keys(text)


def _redact(obj: Any, names: frozenset[str], literals: tuple[str, ...]) -> Any:
    if isinstance(obj, str):
        return _mask(obj, literals)
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            new_key = _mask(key, literals) if isinstance(key, str) else key
            secret = isinstance(key, str) and is_secret_key(key, names)
            out[new_key] = REDACTED if secret else _redact(value, names, literals)
        return out
    if isinstance(obj, list):
        return [_redact(v, names, literals) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_redact(v, names, literals) for v in obj)
    return obj
