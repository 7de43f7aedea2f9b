"""Progress bars for long loops: shown in a terminal, quiet under CI (CI=true) or TQDM_DISABLE."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    """True unless running under CI, with TQDM_DISABLE set, or without a terminal on stderr."""
    if os.environ.get("CI", "").lower() in {"1", "true"} or os.environ.get("TQDM_DISABLE"):
        return False
    return sys.stderr.isatty()


def progress(iterable: Iterable[T] | None = None, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar (``desc``, ``total``, ``unit`` ...) that respects :func:`progress_enabled`.

    ``enabled=False`` hides it regardless (e.g. in every process but the first).
    """
    return tqdm(iterable, disable=not (enabled and progress_enabled()), dynamic_ncols=True, **kwargs)
