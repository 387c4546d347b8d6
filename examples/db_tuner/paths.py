"""Where the db-tuner's database lives.

Kept apart from `examples.db_tuner.data` so the tools can find the database without
importing the generator (and ``python -m examples.db_tuner.data`` runs cleanly).
"""

import os
from pathlib import Path


def default_db_path(data_dir: Path) -> Path:
    """Where the tools look for the database: ``$DB_TUNER_DB``, else under ``data_dir``."""
    override = os.environ.get("DB_TUNER_DB")  # read per call, so tests can point elsewhere
    return Path(override) if override else data_dir / "db-tuner" / "shop.db"
