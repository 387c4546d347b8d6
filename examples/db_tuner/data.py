"""The db-tuner's playground: a deterministic SQLite shop database with slow queries.

``generate`` builds customers, products, orders, order_items and reviews (about 100k rows
at scale 1.0) from a seeded `random.Random`, so every build of a given scale is the same
database. It also fills ``slow_query_log`` with queries that filter or join on columns
no index covers, and creates one index (``idx_products_legacy_sku``) that no logged query
uses, so the agent has something to add and something to remove.

    python -m examples.db_tuner.data --out .data/db-tuner/shop.db [--scale 0.1] [--force]
"""

import argparse
import os
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from examples.db_tuner.paths import default_db_path

__all__ = ["default_db_path", "generate", "main"]

SEED = 20_240_601
FIRST_DAY = datetime(2024, 1, 1)
DAYS = 730  # orders and reviews span 2024-01-01 .. 2025-12-31
RECENT_CUTOFF = "2025-12-01"  # the report query's range: about 4% of the orders

# Rows per table at scale 1.0 (order_items average ~1.8 per order: ~54k).
BASE_COUNTS = {"customers": 10_000, "products": 2_000, "orders": 30_000, "reviews": 8_000}

FIRST_NAMES = ("ada", "alan", "barbara", "claude", "donald", "edsger", "frances", "grace")
LAST_NAMES = ("hopper", "knuth", "liskov", "lovelace", "shannon", "turing", "allen", "wirth")
CITIES = ("Lisbon", "Oslo", "Lyon", "Austin", "Osaka", "Pune", "Quito", "Perth", "Accra")
CATEGORIES = ("books", "garden", "kitchen", "toys", "audio", "sports", "office")
STATUSES = ("paid", "paid", "paid", "shipped", "shipped", "delivered", "refunded")

SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL,
    city TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE products (
    id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, legacy_sku TEXT,
    name TEXT NOT NULL, category TEXT NOT NULL, price_cents INTEGER NOT NULL);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
    status TEXT NOT NULL, created_at TEXT NOT NULL, total_cents INTEGER NOT NULL);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL, price_cents INTEGER NOT NULL);
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL REFERENCES products(id),
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    rating INTEGER NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE slow_query_log (
    id INTEGER PRIMARY KEY, sql TEXT NOT NULL, calls INTEGER NOT NULL, avg_ms REAL NOT NULL);
-- A leftover from a retired importer: nothing queries legacy_sku any more.
CREATE INDEX idx_products_legacy_sku ON products(legacy_sku);
"""


def _count(table: str, scale: float) -> int:
    return max(1, round(BASE_COUNTS[table] * scale))


def _stamp(rng: random.Random) -> str:
    moment = FIRST_DAY + timedelta(days=rng.randrange(DAYS), seconds=rng.randrange(86_400))
    return moment.isoformat(sep=" ")


def _customers(rng: random.Random, n: int) -> Iterator[tuple[int, str, str, str, str]]:
    for i in range(1, n + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}.{i}@example.com"
        yield i, f"{first.title()} {last.title()}", email, rng.choice(CITIES), _stamp(rng)


def _products(rng: random.Random, n: int) -> Iterator[tuple[int, str, str, str, str, int]]:
    for i in range(1, n + 1):
        category = rng.choice(CATEGORIES)
        price = rng.randrange(199, 19_999)
        yield (
            i,
            f"SKU-{i:06d}",
            f"L{rng.randrange(10**8):08d}",
            f"{category} item {i}",
            category,
            price,
        )


def _orders_and_items(
    rng: random.Random, n_orders: int, n_customers: int, prices: list[int]
) -> tuple[list[tuple[int, int, str, str, int]], list[tuple[int, int, int, int, int]]]:
    orders: list[tuple[int, int, str, str, int]] = []
    items: list[tuple[int, int, int, int, int]] = []
    for oid in range(1, n_orders + 1):
        total = 0
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            pid = rng.randrange(1, len(prices) + 1)
            qty = rng.randint(1, 4)
            total += qty * prices[pid - 1]
            items.append((len(items) + 1, oid, pid, qty, prices[pid - 1]))
        customer = rng.randint(1, n_customers)
        orders.append((oid, customer, rng.choice(STATUSES), _stamp(rng), total))
    return orders, items


def _reviews(
    rng: random.Random, n: int, n_products: int, n_customers: int
) -> Iterator[tuple[int, int, int, int, str, str]]:
    for i in range(1, n + 1):
        rating = rng.choice((1, 2, 3, 4, 4, 5, 5, 5))
        body = "great" if rating >= 4 else "meh" if rating == 3 else "broke quickly"
        yield i, rng.randint(1, n_products), rng.randint(1, n_customers), rating, body, _stamp(rng)


def _slow_queries(
    rng: random.Random, customers: list[tuple[int, str, str, str, str]], n_products: int
) -> list[tuple[int, str, int, float]]:
    """Queries as an application would log them: literal values that exist in the data."""
    cid, reviewer = rng.randint(1, len(customers)), rng.randint(1, len(customers))
    pid = rng.randint(1, n_products)
    email = customers[rng.randrange(len(customers))][2]
    return [
        (
            1,
            f"SELECT id, status, total_cents, created_at FROM orders WHERE customer_id = {cid}",
            18_240,
            41.7,
        ),
        (2, f"SELECT order_id, quantity FROM order_items WHERE product_id = {pid}", 9_310, 63.2),
        (3, f"SELECT id, name, city FROM customers WHERE email = '{email}'", 25_002, 12.9),
        (
            4,
            "SELECT p.name, r.rating, r.created_at FROM reviews r "
            f"JOIN products p ON p.id = r.product_id WHERE r.customer_id = {reviewer} "
            "ORDER BY r.created_at DESC",
            3_120,
            8.4,
        ),
        (
            5,
            f"SELECT COUNT(*), SUM(total_cents) FROM orders WHERE created_at >= '{RECENT_CUTOFF}'",
            1_440,
            35.0,
        ),
    ]


def generate(path: Path, *, scale: float = 1.0) -> Path:
    """Build the database at ``path`` (replacing any file there) and return ``path``.

    The file is built next to ``path`` and renamed into place, so a reader (or a crash)
    never sees half a database.
    """
    if not 0 < scale <= 20:
        raise ValueError(f"scale must be in (0, 20], got {scale}: 1.0 is about 100k rows")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".building")
    tmp.unlink(missing_ok=True)
    n_customers, n_products = _count("customers", scale), _count("products", scale)
    rng = random.Random(SEED)
    customers = list(_customers(rng, n_customers))
    products = list(_products(rng, n_products))
    orders, items = _orders_and_items(
        rng, _count("orders", scale), n_customers, [p[5] for p in products]
    )
    reviews = list(_reviews(rng, _count("reviews", scale), n_products, n_customers))
    conn = sqlite3.connect(tmp)
    try:
        # Bulk load: no journal, no fsync, one transaction. Safe because of the rename.
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.executescript(SCHEMA)
        with conn:
            conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", customers)
            conn.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?, ?)", products)
            conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", orders)
            conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", items)
            conn.executemany("INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?)", reviews)
            conn.executemany(
                "INSERT INTO slow_query_log VALUES (?, ?, ?, ?)",
                _slow_queries(rng, customers, n_products),
            )
    finally:
        conn.close()
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: build the database, refusing to overwrite one without ``--force``."""
    data_dir = Path(os.environ.get("AGENT_DATA_DIR", ".data"))
    parser = argparse.ArgumentParser(prog="python -m examples.db_tuner.data", description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="database file to write")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 is about 100k rows")
    parser.add_argument("--force", action="store_true", help="replace an existing database")
    args = parser.parse_args(argv)
    out: Path = args.out or default_db_path(data_dir)
    if out.exists() and not args.force:
        sys.stderr.write(f"{out} already exists; pass --force to rebuild it\n")
        return 1
    started = time.perf_counter()
    try:
        generate(out, scale=args.scale)
    except ValueError as err:
        sys.stderr.write(f"{err}\n")
        return 2
    sys.stdout.write(f"wrote {out} in {time.perf_counter() - started:.2f}s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
