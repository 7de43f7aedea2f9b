"""Accuracy and CoT tokens per difficulty level and per subject, when the dataset has them (MATH).

Each ratio and baseline of the evaluate report gets ``"breakdown": {"level": {"1": {...}, ...},
"subject": {...}}``, each group holding ``n``, ``accuracy``, ``mean_cot_tokens`` and
``actual_ratio`` (mean CoT tokens over those of the reference condition on the same questions:
g = 1.0 for the ratios, ``original`` for the baselines). A dataset without levels or subjects
(GSM8K, the synthetic set) gets no ``breakdown`` key at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenskip.core.problems import Problem

DIMENSIONS = ("level", "subject")
UNKNOWN = "unknown"  # the group of a question whose dataset record has no level (or subject)


def _sort_key(value: str) -> tuple[int, float, str]:
    """Numeric levels in numeric order, then any other value alphabetically."""
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def group_ids(problems: Sequence[Problem]) -> dict[str, dict[str, set[str]]]:
    """Per dimension that any problem has a value for: group value -> question ids."""
    groups: dict[str, dict[str, set[str]]] = {}
    for dimension in DIMENSIONS:
        if not any(getattr(p, dimension) for p in problems):
            continue
        found: dict[str, set[str]] = {}
        for problem in problems:
            found.setdefault(getattr(problem, dimension) or UNKNOWN, set()).add(problem.id)
        groups[dimension] = {value: found[value] for value in sorted(found, key=_sort_key)}
    return groups


def _mean_tokens(records: Sequence[Mapping[str, Any]]) -> float:
    return sum(r["cot_tokens"] for r in records) / len(records) if records else 0.0


def group_figures(
    records: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]], ids: set[str]
) -> dict[str, float | int | None]:
    """``n``, ``accuracy``, ``mean_cot_tokens`` and ``actual_ratio`` of the records of ``ids``."""
    mine = [r for r in records if r["id"] in ids]
    tokens, base = _mean_tokens(mine), _mean_tokens([r for r in reference if r["id"] in ids])
    return {
        "n": len(mine),
        "accuracy": round(sum(bool(r["correct"]) for r in mine) / len(mine), 4) if mine else None,
        "mean_cot_tokens": round(tokens, 2),
        "actual_ratio": round(tokens / base, 4) if base else (1.0 if not tokens else None),
    }


def breakdown(
    records: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]],
    groups: Mapping[str, Mapping[str, set[str]]],
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """One condition's figures per group of every dimension."""
    return {dimension: {value: group_figures(records, reference, ids) for value, ids in by_value.items()}
            for dimension, by_value in groups.items()}


def add_breakdowns(
    report: dict[str, Any], problems: Sequence[Problem], tuned: Mapping[str, Sequence[Mapping[str, Any]]],
    base: Mapping[str, Sequence[Mapping[str, Any]]], tuned_reference: str,
) -> None:
    """Set ``breakdown`` in every ratio (against ``tuned_reference``, g = 1.0) and every baseline
    (against ``original``) of ``report``; nothing when the problems have no level or subject."""
    groups = group_ids(problems)
    if not groups:
        return
    for name, records in tuned.items():
        report["ratios"][name]["breakdown"] = breakdown(records, tuned[tuned_reference], groups)
    for name, records in base.items():
        report["baselines"][name]["breakdown"] = breakdown(records, base["original"], groups)
