"""Argument models of the file-editor tools.

The registry turns each model into the JSON schema the planner sees and plans are
validated against; ``extra="forbid"`` makes a misspelt argument a plan error the planner
is told about instead of an argument silently ignored. Paths are plain strings here: the
sandbox (`examples.file_editor.sandbox`) decides what they may name.
"""

from pydantic import BaseModel, ConfigDict, Field

PATH_HELP = "Relative to the workspace, e.g. 'notes/todo.txt'. No absolute paths, no '..'."
MAX_CONTENT_CHARS = 1_000_000


class ListArgs(BaseModel):
    """Which directory to list."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(default=".", min_length=1, max_length=1024, description=PATH_HELP)
    recursive: bool = Field(default=False, description="Also list sub-directories.")
    max_entries: int = Field(default=200, ge=1, le=2000, description="Most entries returned.")


class ReadArgs(BaseModel):
    """Which file to read, and how much of it."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=1024, description=PATH_HELP)
    max_bytes: int = Field(
        default=65_536, ge=1, le=1_048_576, description="Most bytes read from the start."
    )


class WriteArgs(BaseModel):
    """Which file to (over)write, and its whole new content."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=1024, description=PATH_HELP)
    content: str = Field(max_length=MAX_CONTENT_CHARS, description="The complete new text.")


class UndoArgs(BaseModel):
    """Which write (or delete) to undo."""

    model_config = ConfigDict(extra="forbid")
    write_id: str = Field(
        pattern=r"^w[0-9a-f]{16}$", description="The write_id a write_file or delete_file returned."
    )


class DeleteArgs(BaseModel):
    """Which file to delete."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=1024, description=PATH_HELP)
