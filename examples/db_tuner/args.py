"""Argument models of the db-tuner tools.

The tool registry turns each model into the JSON schema the planner sees and the workflow
validates plans against; ``extra="forbid"`` makes a misspelt argument a plan error the
planner is told about, instead of an argument silently ignored.
"""

from pydantic import BaseModel, ConfigDict, Field


class NoArgs(BaseModel):
    """No arguments."""

    model_config = ConfigDict(extra="forbid")


class TableArgs(BaseModel):
    """A table name."""

    model_config = ConfigDict(extra="forbid")
    table: str = Field(min_length=1, max_length=128, description="A table from list_tables.")


class SqlArgs(BaseModel):
    """One SELECT statement."""

    model_config = ConfigDict(extra="forbid")
    sql: str = Field(min_length=1, max_length=10_000, description="A single SELECT statement.")


class QueryArgs(SqlArgs):
    """A SELECT and how many rows to return."""

    limit: int = Field(default=100, ge=1, le=1000, description="Most rows returned.")


class TimeArgs(SqlArgs):
    """A SELECT and how many timed runs."""

    repeat: int = Field(default=5, ge=1, le=50, description="Timed runs (median reported).")


class CreateIndexArgs(BaseModel):
    """What to index."""

    model_config = ConfigDict(extra="forbid")
    table: str = Field(min_length=1, max_length=128)
    columns: list[str] = Field(min_length=1, max_length=8, description="Indexed columns, in order.")
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="Index name; default idx_<table>_<columns>.",
    )


class DropIndexArgs(BaseModel):
    """Which index to drop."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128, description="An index from list_tables.")
