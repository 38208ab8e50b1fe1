"""Writing files so that readers see the complete file or nothing.

Used by :mod:`nearid.io` (saved decompositions and maps) and :mod:`nearid.app.report`
(report.json); it knows nothing about what the files hold.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["atomic_write"]


def atomic_write(path: Any, write: Callable[[str], None]) -> None:
    """Call write(temporary) for a new file beside `path`, then rename it to `path`:
    readers see the complete file or nothing, and a failure (Ctrl-C included)
    leaves nothing. The data is flushed to disk (fsync) before the rename, and
    the directory after it, so a crash cannot leave a truncated file under the
    final name. The new file gets the permissions open() would give it (or
    those of the file it replaces); a symbolic link at `path` is followed, as
    writing through it would."""
    path = Path(os.path.realpath(os.fspath(path)))
    mode = path.stat().st_mode & 0o7777 if path.is_file() else 0o666  # open() applies the umask to 0o666
    temporary = ""
    try:
        while True:
            candidate = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
            try:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
            except FileExistsError:
                continue
            temporary = str(candidate)
            break
        write(temporary)
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        if mode != 0o666:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
        temporary = ""
        _fsync_directory(path.parent)
    finally:
        if temporary and os.path.exists(temporary):
            os.unlink(temporary)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse it
        pass
    finally:
        os.close(fd)
