"""State checks of the file-editor for ``agentctl eval``: what its runs leave in the workspace."""

from pathlib import Path

from examples.file_editor.sandbox import workspace_root


def _text_files(data_dir: Path, suffix: str) -> list[Path]:
    root = workspace_root(data_dir)
    return sorted(p for p in root.rglob(f"*{suffix}") if p.is_file() and not p.is_symlink())


def header_everywhere(data_dir: Path, arg: str) -> list[str]:
    """Every file of one extension in the workspace starts with a header:
    ``header_everywhere:HEADER`` (``.txt`` files) or ``header_everywhere:.md=HEADER``."""
    suffix, header = ".txt", arg
    if arg.startswith(".") and "=" in arg:
        suffix, _, header = arg.partition("=")
    root = workspace_root(data_dir)
    files = _text_files(data_dir, suffix)
    if not files:
        return [f"no {suffix} files in the workspace"]
    return [
        f"{p.relative_to(root)} does not start with {header!r}"
        for p in files
        if not p.read_text(errors="replace").startswith(header)
    ]


def file_exists(data_dir: Path, rel: str) -> list[str]:
    """The workspace holds ``rel`` (``file_exists:notes.txt``)."""
    return [] if (workspace_root(data_dir) / rel).is_file() else [f"{rel} is missing"]


def unchanged(data_dir: Path, rel_and_text: str) -> list[str]:
    """``rel`` holds exactly ``text`` (``unchanged:notes.txt=the text``)."""
    rel, _, text = rel_and_text.partition("=")
    path = workspace_root(data_dir) / rel
    if not path.is_file():
        return [f"{rel} is missing"]
    return [] if path.read_text() == text else [f"{rel} changed"]


STATE_CHECKS = {
    "header_everywhere": header_everywhere,
    "file_exists": file_exists,
    "unchanged": unchanged,
}
