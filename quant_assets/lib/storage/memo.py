"""Results of pure functions kept on disk, keyed by the content of their arguments.

The current window's ensemble is rebuilt every day, but what it learns from the earlier windows (their
out-of-fold ensemble, the evaluation of its confidence model) depends only on forecasts and outcomes known at the
window's start: the same arguments every day of the window. A daily run reads those results back instead of
computing them again; any change in an argument (a refitted window, a revised label) is a new key.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Files kept per folder (the newest): a window's results are only read during that window.
KEEP = 32


class DiskMemo:
    """``memo(fn, *args)`` is ``fn(*args)``, computed once per distinct content of ``args`` and kept in ``folder``."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        path = self.folder / f"{fn.__name__}-{content_key(fn.__qualname__, *args)}.pkl"
        if path.is_file():
            with path.open("rb") as handle:
                return pickle.load(handle)
        result = fn(*args)
        write_atomically(path, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        self._prune()
        return result

    def _prune(self) -> None:
        kept = sorted(self.folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[KEEP:]:
            old.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` aside and rename it to ``path`` (its folder created): a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(data)
    partial.replace(path)


def content_key(*parts: Any) -> str:
    """A digest of ``parts`` by value: frames and series by their index, columns, dtypes and cells, arrays by their
    dtype, shape and bytes, containers element by element, anything else by its ``repr``."""
    digest = hashlib.sha256()
    _update(digest, parts)
    return digest.hexdigest()[:32]


def _update(digest, value: Any) -> None:
    if isinstance(value, pd.DataFrame):
        digest.update(f"frame{list(value.columns)}{list(map(str, value.dtypes))}".encode())
        digest.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
    elif isinstance(value, pd.Series):
        digest.update(f"series{value.name}{value.dtype}".encode())
        digest.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(f"array{value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes() if value.dtype != object else repr(value.tolist()).encode())
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__}{len(value)}".encode())
        for item in value:
            _update(digest, item)
    elif isinstance(value, dict):
        digest.update(f"dict{len(value)}".encode())
        for key in sorted(value, key=repr):
            _update(digest, key)
            _update(digest, value[key])
    else:
        digest.update(f"{type(value).__name__}:{value!r}".encode())
