"""Write files atomically: to a temporary name in the same folder, renamed on success.

A reader never sees a half-written output: the data goes to a hidden temporary file
next to the destination (``.<stem>.<random>.partial<suffix>``, the suffix kept so that
libraries which pick a format from the extension, such as ``np.savez`` or PyAV, still
work), which replaces the destination with :func:`os.replace` only once everything was
written. On any exception, ``KeyboardInterrupt`` included, the temporary file is
removed and the destination is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import IO, Iterator

from wsgcn_cli.errors import WsgcnError


def create_temp_path(path: str | os.PathLike) -> Path:
    """Create an empty, uniquely named temporary file beside ``path`` and return its name.

    The file is created with the process umask (like a normal ``open(path, "w")``), so
    the renamed output gets ordinary permissions.

    Raises:
        WsgcnError: the destination folder does not exist or is not writable, or
            ``path`` is an existing folder.
    """
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise WsgcnError(f"output path {path} is a folder, expected a file name")
    if not folder.is_dir():
        raise WsgcnError(f"output folder {folder} does not exist")
    for _ in range(100):
        temp = folder / f".{path.stem}.{secrets.token_hex(4)}.partial{path.suffix}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as e:
            raise WsgcnError(f"cannot write in {folder}: {e.strerror}") from None
        os.close(fd)
        return temp
    raise WsgcnError(f"cannot create a temporary file in {folder}")  # pragma: no cover


def commit_temp_path(temp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move a finished temporary file onto its destination (atomic on one filesystem).

    Raises:
        WsgcnError: the rename failed (the temporary file is removed first).
    """
    try:
        os.replace(temp, path)
    except OSError as e:
        discard_temp_path(temp)
        raise WsgcnError(f"cannot write {path}: {e.strerror}") from None


def discard_temp_path(temp: str | os.PathLike) -> None:
    """Remove a temporary file if it exists; never raises for a missing file."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Context manager yielding a temporary path through which to write ``path``.

    Write the whole file to the yielded path (``Path(tmp).write_text(...)``,
    ``np.savez(tmp, ...)``, ``open(tmp, "w", newline="")`` for :mod:`csv`, or any
    library that opens a file by name). It replaces ``path`` when the block exits
    normally and is deleted if the block raises (``KeyboardInterrupt`` included), leaving
    any previous ``path`` untouched. The temporary name keeps ``path``'s suffix; note
    that ``np.savez`` appends ``.npz`` to names not ending in ``.npz``, so give such
    outputs a ``.npz`` name (or use :func:`atomic_open` in ``"wb"`` mode).

    Example::

        with atomic_write("poses.json") as tmp:
            tmp.write_text(json.dumps(data))

    Raises:
        WsgcnError: see :func:`create_temp_path` and :func:`commit_temp_path`.
    """
    temp = create_temp_path(path)
    try:
        yield temp
    except BaseException:
        discard_temp_path(temp)
        raise
    commit_temp_path(temp, path)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Like :func:`atomic_write`, but yields the temporary file opened for writing.

    ``mode`` is ``"w"``/``"wt"`` (text; ``open_kwargs`` such as ``encoding="utf-8"`` or
    ``newline=""`` go to :func:`open`) or ``"wb"`` (binary, e.g. ``np.savez(f, ...)``).

    Raises:
        ValueError: ``mode`` is not a write mode.
        WsgcnError: see :func:`create_temp_path` and :func:`commit_temp_path`.
    """
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_open mode must be 'w', 'wt' or 'wb', not {mode!r}")
    with atomic_write(path) as temp:
        with open(temp, mode, **open_kwargs) as f:
            yield f


def write_json(path: str | os.PathLike, obj, make_parents: bool = True) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (temporary file, then rename);
    with ``make_parents`` create the missing parent folders first. Returns the path.

    Raises:
        WsgcnError: see :func:`create_temp_path` and :func:`commit_temp_path`.
        TypeError: ``obj`` is not JSON-serialisable (nothing is written).
    """
    import json

    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=2)
    with atomic_write(path) as tmp:
        Path(tmp).write_text(text)
    return path
