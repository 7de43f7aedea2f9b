"""evaluate's per-level / per-subject figures of one ratio as MLflow metrics of its child run."""

from __future__ import annotations

import re
from typing import Any

_METRIC_UNSAFE = re.compile(r"[^\w\-. /]")  # MLflow metric names: letters, digits, _ - . space /


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


def breakdown_figures(row: dict[str, Any]) -> dict[str, float]:
    """The ``breakdown`` of one evaluate.json ratio row as metrics named
    ``<dimension>.<group>.<figure>`` (e.g. ``level.5.accuracy``; characters MLflow refuses in a
    metric name become ``_``); none when the dataset has no levels or subjects."""
    flat = _flatten(row.get("breakdown") or {})
    return {_METRIC_UNSAFE.sub("_", key): value for key, value in flat.items()
            if isinstance(value, int | float) and not isinstance(value, bool)}
