"""Atomic writes: an output appears whole or not at all (write to a temp file beside it, then rename)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


_UMASK = os.umask(0)
os.umask(_UMASK)


# Free space below which a failed write is taken for a full disk (torch.save then fails with a bare RuntimeError).
FULL_DISK_BYTES = 1 << 20


def _disk_full(folder: Path) -> bool:
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < FULL_DISK_BYTES


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `path` only if the block succeeds.

    A write that fails because the disk is full or not writable raises OSError naming `path` (errno ENOSPC, EROFS,
    EACCES, ...), whatever the writer raised (numpy and json give no file name, torch.save a RuntimeError).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(err.filename or path)) from err
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; outputs get the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException as err:
        full = isinstance(err, (OSError, RuntimeError)) and _disk_full(path.parent)  # before the temp file goes
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(err, OSError) and err.errno is not None and err.filename in (None, str(tmp_path)):
            raise OSError(err.errno, err.strerror, str(path)) from err
        if full and not isinstance(err, OSError):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from err
        raise


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=False, allow_nan=False)
            fh.write("\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    # np.savez appends ".npz" to names without it; the temp name ends in ".npz" so it is used as given.
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def read_json(path: str | Path) -> Any:
    with open(path) as fh:
        return json.load(fh)
