"""Blocking file operations inside the workspace, all through link-refusing descriptors.

Every function takes the workspace root and a path already checked by
`examples.file_editor.sandbox.resolve`, opens the parent directory with
`~examples.file_editor.sandbox.open_dir` and the final component with ``O_NOFOLLOW``.
Writes are atomic: the new bytes go to a temporary file in the same directory, are
synced, then renamed over the target, so a crash leaves the old file or the new one,
never half of either.
"""

import os
import stat
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from durable_agents import ToolInputError
from examples.file_editor.sandbox import open_dir, open_subdir, os_errors, split

# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_MODE = 0o644
# Permission bits only: a rewrite never keeps setuid, setgid or sticky, so an edit cannot
# turn into (or keep) a privileged executable someone planted in the workspace.
PERMISSION_BITS = 0o777


@dataclass(frozen=True)
class Snapshot:
    """A file's bytes and permission bits, or the fact that it did not exist."""

    existed: bool
    data: bytes = b""
    mode: int | None = None


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    return "symlink" if stat.S_ISLNK(mode) else "other"


def refuse_hard_links(info: os.stat_result, rel: PurePosixPath) -> None:
    """Refuse a file with more than one name: its other names may lie outside the workspace.

    ``O_NOFOLLOW`` and the path checks stop symbolic links, but a hard link is the file
    itself: reading it reads the outside file, and a change would be a change to that
    file. Nothing tells where the other names are, so every file tool refuses them all.
    """
    if info.st_nlink > 1:
        raise ToolInputError(
            f"'{rel}' has {info.st_nlink} hard links: refused, since another name of the "
            "same file may lie outside the workspace; a person can replace it with a copy"
        )


def _open_regular(dir_fd: int, name: str, rel: PurePosixPath) -> int:
    """A read descriptor of regular file ``name``; links (soft or hard), dirs, devices refused."""
    fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)  # of the descriptor: the file checked is the file read
        if not stat.S_ISREG(info.st_mode):
            raise ToolInputError(f"'{rel}' is a {_kind(info.st_mode)}, not a regular file")
        refuse_hard_links(info, rel)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read(root: Path, rel: PurePosixPath, limit: int | None = None) -> tuple[bytes, int, int]:
    """(up to ``limit`` leading bytes, full size, permission bits) of file ``rel``."""
    parent, name = split(rel)
    with os_errors(rel), open_dir(root, parent) as dir_fd:
        fd = _open_regular(dir_fd, name, rel)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            data = handle.read() if limit is None else handle.read(limit)
            return data, info.st_size, stat.S_IMODE(info.st_mode)


def snapshot(root: Path, rel: PurePosixPath) -> Snapshot:
    """The whole current file, for a backup; a missing file (or parent) is a valid answer."""
    try:
        data, _, mode = read(root, rel)
    except ToolInputError as err:
        if isinstance(err.__cause__, FileNotFoundError):
            return Snapshot(existed=False)
        raise
    return Snapshot(existed=True, data=data, mode=mode)


def atomic_write(root: Path, rel: PurePosixPath, data: bytes, mode: int, tag: str) -> None:
    """Replace (or create) ``rel`` with ``data`` atomically; missing parents are created.

    ``tag`` names the temporary file, so a retry of the same call reuses (and first
    clears) the leftover of a crashed attempt instead of piling up new ones. Only the
    permission bits of ``mode`` are kept (see `PERMISSION_BITS`).
    """
    mode &= PERMISSION_BITS
    parent, name = split(rel)
    tmp = f".{name}.{tag}.tmp"[-255:]
    with os_errors(rel), open_dir(root, parent, create=True) as dir_fd:
        with suppress(FileNotFoundError):  # a crashed attempt's leftover
            os.unlink(tmp, dir_fd=dir_fd)
        fd = os.open(tmp, _TMP_FLAGS, mode, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fchmod(handle.fileno(), mode)  # exact bits, whatever the umask
                os.fsync(handle.fileno())
            # rename never follows a link at the target: it replaces the name itself.
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
        os.fsync(dir_fd)  # make the rename itself survive a crash


def remove(root: Path, rel: PurePosixPath) -> bool:
    """Delete file ``rel``; False if it was already gone (a retried call finds it so)."""
    parent, name = split(rel)
    with os_errors(rel):
        try:
            with open_dir(root, parent) as dir_fd:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    raise ToolInputError(f"'{rel}' is a directory; delete_file removes files")
                refuse_hard_links(info, rel)
                os.unlink(name, dir_fd=dir_fd)
                os.fsync(dir_fd)
        except FileNotFoundError:
            return False
    return True


def list_dir(
    root: Path, rel: PurePosixPath, *, recursive: bool, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Entries under directory ``rel`` sorted by path, and whether ``limit`` cut them short.

    Links are reported as ``symlink`` and never followed, so a listing cannot wander out.
    """
    entries: list[dict[str, Any]] = []
    with os_errors(rel), open_dir(root, rel) as dir_fd:
        truncated = _scan(dir_fd, rel, recursive, limit, entries)
    return entries, truncated


def _scan(
    dir_fd: int, rel: PurePosixPath, recursive: bool, limit: int, out: list[dict[str, Any]]
) -> bool:
    with os.scandir(dir_fd) as found:
        names = sorted(entry.name for entry in found)
    for name in names:
        if len(out) >= limit:
            return True
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue  # removed while listing
        kind = _kind(info.st_mode)
        item: dict[str, Any] = {"path": (rel / name).as_posix(), "type": kind}
        if kind == "file":
            item["size"] = info.st_size
        out.append(item)
        if recursive and kind == "dir":
            child = open_subdir(dir_fd, name)
            try:
                if _scan(child, rel / name, recursive, limit, out):
                    return True
            finally:
                os.close(child)
    return False
