"""Atomic file output: write to a temporary sibling, rename on success.

A job that fails half-way leaves nothing that looks like a finished result, and a
full disk is reported as one line naming the file being written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from layerscope.core.errors import LayerscopeError

_UMASK = os.umask(0)
os.umask(_UMASK)


class DiskFullError(LayerscopeError):
    """No space (or quota) left on the device while writing an output."""


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` is a write that failed for want of space (ENOSPC, or EDQUOT: over quota).

    h5py and Keras raise an ``OSError`` carrying the C library's errno, so one test covers
    numpy, HDF5, zip and plain writes.
    """
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def naming_full_disk(path: str | os.PathLike) -> Iterator[None]:
    """Turn a full-disk ``OSError`` raised inside the block into one line naming ``path``.

    Raises:
        DiskFullError: the block ran out of space.
    """
    try:
        yield
    except OSError as err:
        if not is_disk_full(err):
            raise
        raise DiskFullError(f"no space left on device writing {path}: free space and rerun") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only on success.

    The temporary name keeps the final suffixes so libraries that infer the format
    from the extension (numpy, matplotlib, Keras) still do.

    Args:
        path: the final file; its folder is created if missing.

    Yields:
        The temporary path to write; it replaces ``path`` when the block exits cleanly and
        is removed when it raises.

    Raises:
        DiskFullError: the disk filled up while writing (the temporary file is removed).
    """
    final = Path(path)
    with naming_full_disk(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        suffixes = "".join(final.suffixes)  # keep ".weights.h5", which Keras insists on
        stem = final.name[: len(final.name) - len(suffixes)] if suffixes else final.name
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{stem}.", suffix=f".tmp{suffixes}")
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            if tmp_path.is_file():
                os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; honour the umask
            os.replace(tmp_path, final)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
