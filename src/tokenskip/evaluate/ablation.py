"""The ablation's comparison of pruning variants, as pure functions (no Prefect, no DVC).

A variant is one way of scoring words before pruning (``prune.scorer``, or ``self-information``
without forced digits); each was fine-tuned and evaluated as its own DVC experiment. Compared here:

- accuracy at **matched actual ratios**: each variant's accuracy, linearly interpolated
  (``numpy.interp``) on its own accuracy-vs-actual-ratio curve, at the reference variant's actual
  ratios (at the ends of a curve the nearest point is used, and ``extrapolated`` says so);
- the **paired difference** against the reference (``self-information``) on the same questions at
  each ratio g: accuracy difference (variant - reference) with its paired bootstrap interval, the
  exact McNemar p-value, and the token reduction (:func:`tokenskip.evaluate.statistics.compare`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tokenskip.core.io import atomic_open
from tokenskip.evaluate.statistics import BootstrapSettings, compare

REFERENCE = "self-information"
NO_FORCE_DIGITS = "no-force-digits"
VARIANTS = (REFERENCE, "random", "llmlingua2", NO_FORCE_DIGITS)


def default_variants(has_classifier: bool) -> list[str]:
    """self-information and random, plus llmlingua2 when ``prune.scorer_model`` is a classifier."""
    return [REFERENCE, "random", *(["llmlingua2"] if has_classifier else [])]


def variant_overrides(variant: str, has_classifier: bool) -> list[str]:
    """The ``dvc exp run -S`` overrides of ``variant``. When ``prune.scorer_model`` names a token
    classifier it belongs to llmlingua2: self-information then scores with the base model."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown ablation variant {variant!r} (choose from {', '.join(VARIANTS)})")
    if variant == "llmlingua2" and not has_classifier:
        raise ValueError("variant llmlingua2 needs prune.scorer_model to name a token classifier folder")
    scorer = REFERENCE if variant == NO_FORCE_DIGITS else variant
    overrides = [f"prune.scorer={scorer}"]
    if scorer == REFERENCE and has_classifier:
        overrides.append("prune.scorer_model=null")
    if variant == NO_FORCE_DIGITS:
        overrides.append("prune.force_digits=false")
    return overrides


def curve(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{ratio, actual_ratio, accuracy, accuracy_ci}]`` of an evaluate.json, by actual ratio."""
    points = [{"ratio": key, "actual_ratio": float(m["actual_ratio"]), "accuracy": float(m["accuracy"]),
               "accuracy_ci": m.get("accuracy_ci")} for key, m in report["ratios"].items()]
    return sorted(points, key=lambda p: (p["actual_ratio"], float(p["ratio"])))


def matched_accuracy(at: Sequence[float], points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Accuracy of a curve (``points`` sorted by actual ratio) interpolated at the actual ratios ``at``."""
    xs = np.asarray([p["actual_ratio"] for p in points], dtype=float)
    ys = np.asarray([p["accuracy"] for p in points], dtype=float)
    values = np.interp(np.asarray(at, dtype=float), xs, ys)
    return [{"actual_ratio": round(float(x), 4), "accuracy": round(float(y), 4),
             "extrapolated": bool(x < xs[0] or x > xs[-1])} for x, y in zip(at, values, strict=True)]


def rows_of(per_question: Sequence[Mapping[str, Any]], ratio: str) -> list[dict[str, Any]]:
    """The per-question rows of the fine-tuned model at ratio ``ratio`` (condition ``g=<ratio>``)."""
    return [dict(r) for r in per_question if r.get("condition") == f"g={ratio}"]


def paired_difference(
    reference: Sequence[Mapping[str, Any]],
    candidate: Sequence[Mapping[str, Any]],
    settings: BootstrapSettings,
) -> dict[str, Any]:
    """Accuracy difference candidate - reference with its paired interval, McNemar p, token reduction."""
    stats = compare(reference, candidate, settings)
    low, high = stats["accuracy_drop_ci"]
    return {
        "accuracy_difference": round(-stats["accuracy_drop"], 4) + 0.0,  # + 0.0: no -0.0
        "accuracy_difference_ci": [round(-high, 4) + 0.0, round(-low, 4) + 0.0],
        "mcnemar_p": stats["mcnemar_p"],
        "token_reduction": stats["token_reduction"],
        "token_reduction_ci": stats["token_reduction_ci"],
        "n": len(reference),
    }


def compare_variants(
    results: Mapping[str, Mapping[str, Any]], settings: BootstrapSettings, reference: str = REFERENCE
) -> dict[str, Any]:
    """The ablation report: ``{variant: {"experiment", "overrides", "ratios": {g: ...}}}`` from
    ``results[variant] = {"evaluate": evaluate.json, "per_question": rows, "experiment", "overrides"}``."""
    if reference not in results:
        raise ValueError(f"the reference variant {reference!r} was not run")
    ref_points = curve(results[reference]["evaluate"])
    at = [p["actual_ratio"] for p in ref_points]
    report: dict[str, Any] = {}
    for variant, result in results.items():
        points = curve(result["evaluate"])
        matched = dict(zip([p["ratio"] for p in ref_points], matched_accuracy(at, points), strict=True))
        ratios = {}
        for point in sorted(points, key=lambda p: float(p["ratio"])):
            g = point["ratio"]
            entry = {**point, "matched": matched.get(g)}
            del entry["ratio"]
            if variant != reference and g in matched:
                pair = rows_of(results[reference]["per_question"], g), rows_of(result["per_question"], g)
                entry["vs_" + reference] = paired_difference(*pair, settings)
            ratios[g] = entry
        report[variant] = {"experiment": result.get("experiment"),
                           "overrides": list(result.get("overrides", [])), "ratios": ratios}
    return report


def table_rows(report: Mapping[str, Any], reference: str = REFERENCE) -> list[dict[str, Any]]:
    """One row per variant and ratio: the Prefect table artifact and the printed summary."""
    rows = []
    for variant, body in report.items():
        for g, m in body["ratios"].items():
            diff = m.get("vs_" + reference) or {}
            rows.append({"variant": variant, "g": g, "accuracy": m["accuracy"],
                         "accuracy_ci": m["accuracy_ci"], "actual_ratio": m["actual_ratio"],
                         "matched_accuracy": (m.get("matched") or {}).get("accuracy"),
                         "difference": diff.get("accuracy_difference"),
                         "difference_ci": diff.get("accuracy_difference_ci"),
                         "mcnemar_p": diff.get("mcnemar_p")})
    return rows


def plot_ablation(path: Path, report: Mapping[str, Any], title: str = "Does importance matter?") -> None:
    """Accuracy vs actual ratio, one line per variant with its 95% intervals (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for variant, body in report.items():
        points = sorted(body["ratios"].values(), key=lambda m: m["actual_ratio"])
        xs = [m["actual_ratio"] for m in points]
        ys = [m["accuracy"] for m in points]
        ci = [m.get("accuracy_ci") or [y, y] for m, y in zip(points, ys, strict=True)]
        err = [[max(y - c[0], 0.0) for y, c in zip(ys, ci, strict=True)],
               [max(c[1] - y, 0.0) for y, c in zip(ys, ci, strict=True)]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=variant)
    ax.set_xlabel("actual ratio (kept CoT tokens / original)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)
