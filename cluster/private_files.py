"""Where LFR keeps its records by default, and files that only their owner can read.

The records database, dead letters and reports hold faces (crops of possible matches) and
where people were seen, so they are created owner-only: files 0600, folders 0700. The mode is
set explicitly after creation, so a permissive umask (0022 leaves new files world-readable)
changes nothing.

The default data folder does not depend on the working directory, so every command finds the
same records wherever it is run from: `$LFR_HOME` if set, else `$XDG_DATA_HOME/lfr`, else
`~/.local/share/lfr`.
"""

import os
import stat
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

FILE_MODE = 0o600
FOLDER_MODE = 0o700
HOME_ENV = "LFR_HOME"


def data_home() -> Path:
    """The default folder of LFR's records: `$LFR_HOME`, else `$XDG_DATA_HOME/lfr`, else `~/.local/share/lfr`."""
    explicit = os.environ.get(HOME_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    # The XDG specification says a relative XDG_DATA_HOME is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "lfr"
    return Path.home() / ".local" / "share" / "lfr"


def private_folder(path: Path) -> Path:
    """Create `path` (and missing parents) owner-only (0700); an existing folder is left as it is."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    for folder in missing:
        os.chmod(folder, FOLDER_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists and is owner-only (0600): created empty if missing, narrowed if wider.

    An existing file that group or others could read is narrowed (and the change logged): records
    of faces are never shared through file permissions; share them through the control room.
    An existing file is never opened here, only stat'ed and chmod'ed: closing any descriptor of a
    file drops every POSIX lock this process holds on it, and SQLite's locks on a database (and
    on its -shm, which another process would then truncate under this one's mapping) are exactly
    such locks.
    """
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    except FileExistsError:
        pass
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode != FILE_MODE:
        os.chmod(path, FILE_MODE)
        if mode & 0o077:
            log.warning("file_mode_narrowed", path=str(path), was=oct(mode), now=oct(FILE_MODE))
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` owner-only (0600), atomically: readers see the old file or the whole new one."""
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(partial, path)


def write_private_text(path: Path, text: str) -> None:
    """`write_private` for UTF-8 text (reports)."""
    write_private(path, text.encode("utf-8"))
