"""``reports/metrics.json``: the headline ``dvc metrics show`` prints, from register's verdicts and
evaluate's figures: per ratio the accuracy and its CI, the actual ratio, the latency ratio against
the gate's reference and the verdict; and the champion."""

from __future__ import annotations

from typing import Any

from tokenskip.core.prompts import ratio_key


def _latency(evaluate: dict[str, Any], reference: str) -> float | None:
    if reference == "original":
        return (evaluate.get("baselines") or {}).get("original", {}).get("latency_s")
    return evaluate["ratios"][ratio_key(1.0)].get("latency_s")


def headline_metrics(register_report: dict[str, Any], evaluate: dict[str, Any]) -> dict[str, Any]:
    """The headline metrics of one pipeline run (see the module docstring)."""
    ratios: dict[str, Any] = {}
    for version in register_report["versions"]:
        key = ratio_key(version["ratio"])
        figures = evaluate["ratios"][key]
        base_latency = _latency(evaluate, version["reference"])
        latency = figures.get("latency_s")
        accuracy_ci = version.get("accuracy_ci") or [None, None]
        ratios[key] = {  # scalars only: `dvc metrics show` prints no lists
            "accuracy": version["accuracy"],
            "accuracy_ci_low": accuracy_ci[0],
            "accuracy_ci_high": accuracy_ci[1],
            "actual_ratio": figures["actual_ratio"],
            "latency_ratio": round(latency / base_latency, 4) if latency and base_latency else None,
            "accuracy_drop": version["accuracy_drop"],
            "accuracy_drop_ci_high": version["accuracy_drop_ci"][1],
            "verdict": version["verdict"],
        }
    champion = register_report.get("champion")
    return {
        "reference": register_report["versions"][0]["reference"] if register_report["versions"] else None,
        "ratios": ratios,
        "champion_version": champion["version"] if champion else "none",
        "champion_ratio": champion["ratio"] if champion else None,
    }
