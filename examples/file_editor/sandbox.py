"""The file-editor's confinement: which paths a tool may touch, and how they are opened.

Two layers, so that neither a clever path nor a race gets out of the workspace:

1. `resolve` checks the *name*: absolute paths and any ``..`` component are refused
   outright, then ``os.path.realpath`` follows every symbolic link (intermediate or final,
   dangling or not) and the result must still lie inside the real workspace root. A link
   that stays inside is allowed and replaced by its target; one that leads out is refused,
   and the error names it. The resolved path contains no links at the time of the check.
2. `open_dir` then *opens* that resolved path one component at a time from a descriptor
   of the root, each with ``O_NOFOLLOW | O_DIRECTORY``, and the tools open the final
   component relative to that descriptor with ``O_NOFOLLOW``. If anything was swapped for
   a link between the check and the use (TOCTOU), the open fails instead of following it.

Everything here is blocking; the tools call it through ``asyncio.to_thread``.
"""

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath

from durable_agents import ToolFailedError, ToolInputError

WORKSPACE_ENV = "FILE_EDITOR_WORKSPACE"
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LINK_ERRNOS = {errno.ELOOP, errno.EMLINK}  # what O_NOFOLLOW reports on a link (Linux, BSD)


def workspace_root(data_dir: Path) -> Path:
    """The real (link-free) workspace directory, created on first use.

    ``$FILE_EDITOR_WORKSPACE`` if set (read per call, so tests can point elsewhere), else
    ``data_dir/file-editor/workspace``.
    """
    override = os.environ.get(WORKSPACE_ENV)
    root = Path(override) if override else data_dir / "file-editor" / "workspace"
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def resolve(root: Path, raw: str) -> PurePosixPath:
    """``raw`` as a link-free path relative to ``root`` (``.`` is the root itself).

    Raises `ToolInputError` (never retried) naming the problem: a NUL byte, an absolute
    path, a ``..`` component, or a symbolic link whose target is outside the workspace.
    """
    if "\x00" in raw:
        raise ToolInputError("the path contains a NUL byte; send a plain relative path")
    pure = PurePosixPath(raw)
    if pure.is_absolute():
        raise ToolInputError(
            f"absolute path '{raw}' refused: paths are relative to the workspace root, "
            "e.g. 'notes/todo.txt'"
        )
    if ".." in pure.parts:
        # Refused even when it would stay inside: nothing needs it, and a '..' after a
        # link means something else to the kernel than it does to a string normaliser.
        raise ToolInputError(
            f"path '{raw}' contains '..': paths may not climb out of a directory; "
            "name the file from the workspace root instead"
        )
    real = Path(os.path.realpath(root.joinpath(*pure.parts)))
    if not real.is_relative_to(root):
        raise ToolInputError(
            f"path '{raw}' leads outside the workspace through the symbolic link "
            f"'{_escaping_link(root, pure)}': refused"
        )
    return PurePosixPath(real.relative_to(root).as_posix())


def _escaping_link(root: Path, pure: PurePosixPath) -> str:
    """The first component of ``pure`` that is a link leading out of ``root`` (for errors)."""
    current = root
    for i, part in enumerate(pure.parts):
        current = current / part
        if current.is_symlink() and not Path(os.path.realpath(current)).is_relative_to(root):
            return PurePosixPath(*pure.parts[: i + 1]).as_posix()
    return pure.as_posix()


def split(rel: PurePosixPath) -> tuple[PurePosixPath, str]:
    """(parent directory, file name) of a resolved path; the root itself is not a file."""
    if not rel.parts:
        raise ToolInputError("'.' is the workspace directory itself; name a file inside it")
    return rel.parent, rel.name


@contextmanager
def open_dir(root: Path, rel: PurePosixPath, *, create: bool = False) -> Iterator[int]:
    """A descriptor of directory ``rel`` opened from ``root`` without following any link.

    With ``create``, missing directories are made on the way (``mkdir`` never follows a
    link either: an existing link makes the following open fail). Raw `OSError`s escape;
    wrap the use in `os_errors` to turn them into tool errors.
    """
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in rel.parts:
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            child = open_subdir(fd, part)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def open_subdir(dir_fd: int, name: str) -> int:
    """A descriptor of sub-directory ``name`` of ``dir_fd``; a link there is refused."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except NotADirectoryError:
        # Linux reports a link under O_NOFOLLOW | O_DIRECTORY as "not a directory": say
        # what it really is, so the refusal reads as the sandbox working, not a typo.
        if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise OSError(errno.ELOOP, "symbolic link in the path", name) from None
        raise


@contextmanager
def os_errors(rel: PurePosixPath) -> Iterator[None]:
    """Turn `OSError`s about ``rel`` into tool errors the planner can act on.

    Errors that say the request is wrong are not retried; errors that may pass (an
    interrupted call, a busy device) escape unchanged, and Temporal retries them.
    """
    try:
        yield
    except OSError as err:
        raise translate(err, rel) from err


def translate(err: OSError, rel: PurePosixPath) -> Exception:
    """The tool error for ``err`` raised while working on ``rel``."""
    code = err.errno
    if code == errno.ENOENT:
        return ToolInputError(f"'{rel}' does not exist; list_files shows what does")
    if code == errno.ENOTDIR:
        return ToolInputError(
            f"'{rel}' or one of its parents is a file where a directory is needed"
        )
    if code == errno.EISDIR:
        return ToolInputError(f"'{rel}' is a directory; name a file")
    if code in _LINK_ERRNOS:
        return ToolInputError(f"'{rel}' turned into a symbolic link while in use: refused")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ToolFailedError(f"permission denied on '{rel}' ({err.strerror})")
    if code == errno.ENAMETOOLONG:
        return ToolInputError(f"'{rel}' is too long a name for the file system")
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return ToolFailedError(f"cannot store '{rel}': {err.strerror}")
    return err
