"""What one register run leaves in reports/register.json: per version its verdict under this run's
gate, the alias it holds after the run, the gate's figures; the champion and where it came from;
whether a version of this run passed the gate (what ``--require-champion`` reads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tokenskip.register.gate import Verdict


@dataclass
class Outcome:
    """What the registry holds for this pipeline run after the stage."""

    versions: dict[float, Any]
    verdicts: dict[float, Verdict]
    order: list[float]  # the passing ratios, most compressive first
    existing: dict[str, Any]
    baseline: Any | None
    drops: dict[float, dict[str, float]]  # per ratio, the accuracy drop against each reference
    kept: set[float] = field(default_factory=set)  # ratios whose version keeps an alias it did not earn here


def _entry(ratio: float, row: dict, verdict: Verdict, version: Any, alias: str | None) -> dict[str, Any]:
    return {
        "ratio": ratio,
        "version": str(version.version),
        "verdict": "passed" if verdict.passed else "failed",
        "reason": verdict.reason,
        "role": alias or ("challenger" if verdict.passed else "failed"),
        "alias": alias,
        "accuracy": row["accuracy"],
        "mean_cot_tokens": row["mean_cot_tokens"],
        "accuracy_ci": row.get("accuracy_ci"),
        "reference": verdict.reference,
        "decision": verdict.decision,
        "accuracy_drop": round(verdict.accuracy_drop, 6),
        "accuracy_drop_ci": list(verdict.paired.accuracy_drop_ci),
        "token_reduction": round(verdict.token_reduction, 6),
        "token_reduction_ci": list(verdict.paired.token_reduction_ci),
        "mcnemar_p": verdict.paired.mcnemar_p,
        "run_id": version.run_id,
    }


def outcome_report(
    name: str, parent_id: str, rows: dict, outcome: Outcome, held: dict[str, str], champion: dict | None
) -> dict[str, Any]:
    """reports/register.json (less timing). ``held``: version -> alias after the run; ``champion``:
    :func:`tokenskip.register.aliases.champion_entry`."""
    entries = []
    for ratio in sorted(rows):
        version = outcome.versions[ratio]
        entry = _entry(ratio, rows[ratio], outcome.verdicts[ratio], version, held.get(str(version.version)))
        entry.update({f"accuracy_drop_{ref}": drop for ref, drop in outcome.drops[ratio].items()})
        if ratio in outcome.kept:
            gate, under = version.tags.get("gate"), version.tags.get("gate_thresholds", "earlier thresholds")
            entry["alias_kept"] = (f"{entry['alias']} since an earlier run (its tags: gate {gate} under "
                                   f"{under}); no version of this run passed its gate, so no alias moved")
        entries.append(entry)
    baseline = outcome.baseline
    return {
        "registered_model": name,
        "parent_run_id": parent_id,
        "versions": entries,
        "gate_passed": bool(outcome.order),
        "champion": champion,
        "previous_champion": str(baseline.version) if baseline is not None else None,
        "created_versions": len(outcome.versions) - len(outcome.existing),
        "reused_versions": len(outcome.existing),
    }
