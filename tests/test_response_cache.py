"""The SQLite cache of model replies."""

import asyncio
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from durable_agents._activities.response_cache import CACHE_FILE, CachedReply, ResponseCache

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ)  # conftest put this checkout on PYTHONPATH

MESSAGES = [
    {"role": "system", "content": "You are a database tuner."},
    {"role": "user", "content": "Which index is missing? ünïcode"},
]
REPLY = CachedReply(
    text='{"index": "orders(customer_id)"}',
    model="gpt-4o-mini-2024-07-18",
    finish_reason="stop",
    input_tokens=120,
    output_tokens=14,
)


def key(**changes: Any) -> str:
    params: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "max_tokens": 256,
        "temperature": 0.0,
        "json_mode": True,
    }
    params.update(changes)
    return ResponseCache.key(**params)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / CACHE_FILE


async def test_round_trip(path: Path) -> None:
    cache = ResponseCache(path)
    assert await cache.get(key()) is None
    await cache.put(key(), REPLY)
    assert await cache.get(key()) == REPLY
    assert await cache.get(key(max_tokens=1)) is None


async def test_only_complete_replies_are_stored(path: Path) -> None:
    cache = ResponseCache(path)
    cut = CachedReply("{", "m", "length", 10, 256)
    await cache.put(key(), cut)
    assert await cache.get(key()) is None


async def test_the_first_write_wins(path: Path) -> None:
    cache = ResponseCache(path)
    await cache.put(key(), REPLY)
    await cache.put(key(), CachedReply("other", "m", "stop", 1, 1))
    assert await cache.get(key()) == REPLY


def test_the_key_is_stable() -> None:
    assert key() == key()
    assert key() == key(messages=[dict(m) for m in MESSAGES])
    # Key order in a message and int/float temperature do not matter.
    assert key() == key(messages=[{"content": m["content"], "role": m["role"]} for m in MESSAGES])
    assert key() == key(temperature=0)
    assert len(key()) == 64
    assert int(key(), 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"model": "gpt-4o"},
        {"messages": MESSAGES[:1]},
        {"messages": [*MESSAGES[:1], {"role": "user", "content": "Which index is missing?"}]},
        {"messages": [{"role": "user", "content": m["content"]} for m in MESSAGES]},
        {"messages": list(reversed(MESSAGES))},
        {"max_tokens": 257},
        {"temperature": 0.2},
        {"json_mode": False},
        {"provider": "offline"},
    ],
)
def test_any_change_changes_the_key(change: dict[str, Any]) -> None:
    assert key(**change) != key()


async def test_two_instances_on_one_file_share_entries(path: Path) -> None:
    first, second = ResponseCache(path), ResponseCache(path)
    await first.put(key(), REPLY)
    assert await second.get(key()) == REPLY
    await second.put(key(model="gpt-4o"), REPLY)
    assert await first.get(key(model="gpt-4o")) == REPLY
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_concurrent_puts_of_one_key_do_not_fail(path: Path) -> None:
    caches = [ResponseCache(path) for _ in range(4)]
    replies = [CachedReply(f"reply {i}", "m", "stop", i, i) for i in range(40)]
    await asyncio.gather(*(caches[i % 4].put(key(), r) for i, r in enumerate(replies)))
    stored = await caches[0].get(key())
    assert stored in replies
    assert all([await c.get(key()) == stored for c in caches])


async def test_an_unusable_file_is_a_miss_not_an_error(tmp_path: Path) -> None:
    bad = tmp_path / CACHE_FILE
    bad.write_bytes(b"this is not a database" * 100)
    cache = ResponseCache(bad)
    await cache.put(key(), REPLY)
    assert await cache.get(key()) is None


WRITER = """
import asyncio, sys
from pathlib import Path
from durable_agents._activities.response_cache import CachedReply, ResponseCache

async def main(path: str, shared: str, me: str) -> None:
    cache = ResponseCache(Path(path))
    for i in range(30):
        await cache.put(shared, CachedReply(f"{me}-{i}", "m", "stop", 1, 1))
        await cache.put(f"{me}-{i}", CachedReply(me, "m", "stop", 1, 1))
        assert await cache.get(shared) is not None

asyncio.run(main(*sys.argv[1:]))
"""


async def test_concurrent_processes_share_one_file(path: Path) -> None:
    writers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, str(path), key(), f"p{n}", cwd=ROOT, env=ENV
        )
        for n in range(3)
    ]
    assert [await w.wait() for w in writers] == [0, 0, 0]
    cache = ResponseCache(path)
    shared = await cache.get(key())
    assert shared is not None and shared.text.split("-")[0] in {"p0", "p1", "p2"}
    for n in range(3):
        assert await cache.get(f"p{n}-29") == CachedReply(f"p{n}", "m", "stop", 1, 1)
