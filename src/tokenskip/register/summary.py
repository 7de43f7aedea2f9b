"""The summary of one pipeline run, from register's verdicts and evaluate's figures:

- ``reports/metrics.json``, the headline ``dvc metrics show`` prints (headline_metrics): per ratio
  the accuracy and its CI, the actual ratio, the latency ratio against the gate's reference and
  the verdict; and the champion;
- the tables people read (run_summary): results, gate and champion, drawn by
  tokenskip.register.tables, as `tokenskip run` prints them and the README shows them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenskip.core.prompts import ratio_key
from tokenskip.register.tables import champion_line, champion_of, gate_markdown, results_markdown


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
    champion = champion_of(register_report)
    return {
        "reference": register_report["versions"][0]["reference"] if register_report["versions"] else None,
        "ratios": ratios,
        "champion_version": champion["version"] if champion else "none",
        "champion_ratio": champion["ratio"] if champion else None,
    }


def run_summary(evaluate: Mapping[str, Any] | None, register: Mapping[str, Any] | None,
                baselines: Sequence[str] | None = None, show_version: bool = True) -> str:
    """The results table (``baselines``: which baselines besides the original, default all), the
    gate table and the champion line; a line for each report that is missing."""
    parts = [results_markdown(evaluate, register, baselines) if evaluate else "(no reports/evaluate.json)"]
    if register and register.get("versions"):
        parts.append(gate_markdown(register, show_version))
    else:
        parts.append(champion_line(champion_of(register), show_version) if register else
                     "Champion: (no reports/register.json)")
    return "\n\n".join(parts)
