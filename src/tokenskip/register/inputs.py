"""Reading ``reports/evaluate.json`` for the gate: the per-ratio metrics and, per ratio, its paired
comparison with each reference. Every gap or malformed value is one error naming file and field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import file_sha256, folder_digests
from tokenskip.core.prompts import ratio_key, trained_ratios
from tokenskip.register.gate import Paired, RatioResult


def content_key(model_dir: Path, kind: str, evaluate: Path) -> str:
    """What makes a registry version: the fine-tuned model's files (its ``kind`` folder, ``model`` or
    ``adapter``, by content) and the evaluation report. 32 hex digits of a sha256."""
    identity = {"model": folder_digests(model_dir / kind), "evaluate": file_sha256(evaluate)}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


GATE_METRICS = ("accuracy", "mean_cot_tokens", "actual_ratio")  # numbers, always
TIMING_METRICS = ("latency_s", "throughput_tok_s")  # present; null when evaluate did not time it
METRICS = GATE_METRICS + TIMING_METRICS


def ratio_results(
    evaluate: Mapping[str, Any], ratios: list[float], source: str
) -> dict[float, dict[str, float]]:
    """Per-ratio metrics of ``reports/evaluate.json`` for g = 1.0 and ``ratios``.

    Raises TokenSkipError naming the file, the missing ratio or metric, or the bad value.
    """
    table = evaluate.get("ratios") if isinstance(evaluate, Mapping) else None
    if not isinstance(table, Mapping):
        raise TokenSkipError(f"{source}: missing object 'ratios'")
    by_value: dict[float, Any] = {}
    for key, value in table.items():
        try:
            by_value[round(float(key), 6)] = value
        except ValueError:
            raise TokenSkipError(f"{source}: ratios.{key}: not a number") from None
    results = {}
    for ratio in trained_ratios(ratios):
        label = ratio_key(ratio)
        entry = by_value.get(round(ratio, 6))
        if not isinstance(entry, Mapping):
            raise TokenSkipError(f"{source}: ratios.{label}: missing (evaluate.ratios lists it)")
        results[ratio] = {metric: _metric(entry, metric, f"{source}: ratios.{label}") for metric in METRICS}
        if entry.get("accuracy_ci") is not None:
            where = f"{source}: ratios.{label}.accuracy_ci"
            results[ratio]["accuracy_ci"] = list(_interval_of(entry["accuracy_ci"], where))
    return results


def _metric(entry: Mapping[str, Any], metric: str, where: str) -> float | None:
    if metric not in entry or (entry[metric] is None and metric in GATE_METRICS):
        raise TokenSkipError(f"{where}.{metric}: missing")
    value = entry[metric]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenSkipError(f"{where}.{metric}: not a number ({value!r})")
    return float(value)


PAIRED_FIELDS = ("accuracy_drop", "accuracy_drop_ci", "token_reduction", "token_reduction_ci", "mcnemar_p")
REFERENCES = ("original", "g1")


def paired_results(
    evaluate: Mapping[str, Any], ratios: list[float], source: str
) -> dict[float, dict[str, Paired]]:
    """Per ratio, its paired comparison with each reference evaluate measured (``ratios.<g>.paired``).

    Raises TokenSkipError naming the file and the missing or malformed field.
    """
    table = evaluate["ratios"]
    results: dict[float, dict[str, Paired]] = {}
    for ratio in trained_ratios(ratios):
        label = ratio_key(ratio)
        entry = next(v for k, v in table.items() if round(float(k), 6) == round(ratio, 6))
        paired = entry.get("paired")
        if not isinstance(paired, Mapping):
            raise TokenSkipError(f"{source}: ratios.{label}.paired: missing (re-run evaluate)")
        results[ratio] = {ref: _paired(paired[ref], f"{source}: ratios.{label}.paired.{ref}")
                          for ref in REFERENCES if ref in paired}
    return results


def _interval_of(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise TokenSkipError(f"{where}: not an interval [low, high] ({value!r})")
    low, high = (_number(x, where) for x in value)
    return low, high


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenSkipError(f"{where}: not a number ({value!r})")
    return float(value)


def _paired(entry: Any, where: str) -> Paired:
    if not isinstance(entry, Mapping) or any(field not in entry for field in PAIRED_FIELDS):
        raise TokenSkipError(f"{where}: needs {', '.join(PAIRED_FIELDS)}")
    return Paired(
        accuracy_drop=_number(entry["accuracy_drop"], f"{where}.accuracy_drop"),
        accuracy_drop_ci=_interval_of(entry["accuracy_drop_ci"], f"{where}.accuracy_drop_ci"),
        token_reduction=_number(entry["token_reduction"], f"{where}.token_reduction"),
        token_reduction_ci=_interval_of(entry["token_reduction_ci"], f"{where}.token_reduction_ci"),
        mcnemar_p=_number(entry["mcnemar_p"], f"{where}.mcnemar_p"),
    )


def as_result(ratio: float, row: Mapping[str, float]) -> RatioResult:
    """The gate's view of one ratio."""
    return RatioResult(ratio, row["accuracy"], row["mean_cot_tokens"], row["actual_ratio"])
