"""Accuracy against mean CoT tokens: the TokenSkip curve and every baseline (CSV for ``dvc plots``, PNG)."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from tokenskip.core.io import atomic_open

PARETO_FIELDS = ("method", "g", "mean_tokens", "accuracy", "accuracy_low", "accuracy_high")
_TRAILING_RATIO = re.compile(r"_(\d*\.?\d+)$")


def baseline_ratio(name: str) -> float | None:
    """The nominal g of a baseline: 1.0 for ``original``, the suffix of ``truncation_0.5``, else None."""
    if name == "original":
        return 1.0
    match = _TRAILING_RATIO.search(name)
    return float(match.group(1)) if match else None


def pareto_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per evaluated condition: TokenSkip ratios (method ``tokenskip``), then baselines."""
    rows = [_row("tokenskip", float(key), m)
            for key, m in sorted(report["ratios"].items(), key=lambda item: -float(item[0]))]
    for name, metrics in report.get("baselines", {}).items():
        method = "truncation" if name.startswith("truncation_") else name
        rows.append(_row(method, baseline_ratio(name), metrics))
    return rows


def _row(method: str, g: float | None, metrics: dict[str, Any]) -> dict[str, Any]:
    low, high = metrics.get("accuracy_ci") or (metrics["accuracy"], metrics["accuracy"])
    return {"method": method, "g": g, "mean_tokens": metrics["mean_cot_tokens"],
            "accuracy": metrics["accuracy"], "accuracy_low": low, "accuracy_high": high}


def write_pareto_csv(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Write the rows (``method,g,mean_tokens,accuracy,accuracy_low,accuracy_high``; empty g where none
    applies) atomically; ``dvc plots`` draws one series per method from it."""
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=PARETO_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "g": "" if row["g"] is None else row["g"]})


def plot_pareto(path: str | Path, rows: list[dict[str, Any]], title: str = "TokenSkip") -> None:
    """Accuracy vs mean CoT tokens with 95% error bars, one colour per method: lines for TokenSkip
    and truncation, markers for the rest."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    markers = iter("s^vDPX*ph")
    methods = list(dict.fromkeys(row["method"] for row in rows))
    colours = plt.get_cmap("tab10")
    for index, method in enumerate(methods):
        points = sorted((r for r in rows if r["method"] == method), key=lambda r: r["mean_tokens"])
        xs = [r["mean_tokens"] for r in points]
        ys = [r["accuracy"] for r in points]
        errors = [[r["accuracy"] - r["accuracy_low"] for r in points],
                  [r["accuracy_high"] - r["accuracy"] for r in points]]
        line = method in ("tokenskip", "truncation")
        axes.errorbar(xs, ys, yerr=errors, color=colours(index % 10), label=method, capsize=2,
                      marker="o" if line else next(markers, "o"), markersize=5 if line else 7,
                      linewidth=(2 if method == "tokenskip" else 1.2) if line else 0, elinewidth=0.8,
                      zorder=3)
        for r in points if line else []:
            axes.annotate(f"{r['g']:g}", (r["mean_tokens"], r["accuracy"]), textcoords="offset points",
                          xytext=(4, 4), fontsize=7)
    axes.set_xlabel("mean CoT tokens (target tokenizer)")
    axes.set_ylabel("accuracy")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(f"{title}: accuracy vs CoT length")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    target = Path(path)
    with atomic_open(target, "wb") as handle:
        figure.savefig(handle, format="png")
    plt.close(figure)
