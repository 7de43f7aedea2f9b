"""The model registry side of the register stage: versions, their tags, the gate's aliases.

One version per (fine-tuned model, evaluation, ratio), keyed by the version tag ``tokenskip.key``
= ``<content key>:<ratio>``, where the content key hashes the model's files and what the evaluation
found (figures, per-question results, settings; never its latencies or throughput, which differ
between two evaluations of the same weights): a
version is looked up before it is created, and created with all its tags in one call, so a re-run
creates nothing new, whoever runs it (the flow or a plain ``tokenskip register``), and a retry
after a failure completes the job without a half-tagged version. Aliases only (``champion``,
``challenger``), never stages.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenskip.core.io import folder_digests, read_jsonl
from tokenskip.core.prompts import ratio_key
from tokenskip.register.gate import RatioResult, Verdict
from tokenskip.register.inputs import METRICS
from tokenskip.tracking.retries import is_missing
from tokenskip.tracking.store import Tracking

KEY_TAG = "tokenskip.key"  # <content key>:<ratio>: one version per model, evaluation and ratio
CONTENT_TAG = "tokenskip.content"  # the content key alone
PARENT_RUN_TAG = "parent_run_id"
PREVIOUS_CHAMPION_TAG = "previous_champion"
CHAMPION = "champion"
CHALLENGER = "challenger"
TIMING_KEY = re.compile(r"latency|throughput|seconds|_s$")  # evaluate.json keys the clock measured


def evaluation_content(tree: Any) -> Any:
    """What an evaluation found, without what the clock measured: ``tree`` less every key that
    names a timing (latency, throughput, seconds, ``*_s``), which differ between two evaluations
    of the same weights on the same questions."""
    if isinstance(tree, Mapping):
        return {key: evaluation_content(value) for key, value in tree.items()
                if not TIMING_KEY.search(str(key))}
    if isinstance(tree, list | tuple):
        return [evaluation_content(value) for value in tree]
    return tree


def content_key(
    model_dir: Path, kind: str, evaluate: Mapping[str, Any], per_question: Path | None = None
) -> str:
    """What makes a registry version: the fine-tuned model's files (its ``kind`` folder, ``model`` or
    ``adapter``, by content) and what the evaluation found (evaluate.json's figures, paired
    statistics and decoding settings, and each question's result when ``per_question`` is given),
    never its timings. 32 hex digits of a sha256."""
    identity: dict[str, Any] = {"model": folder_digests(model_dir / kind),
                                "evaluate": evaluation_content(evaluate)}
    if per_question is not None:
        identity["per_question"] = evaluation_content(read_jsonl(per_question))
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def registered_model_name(configured: str | None, model_name: str, dataset: str) -> str:
    """``mlflow.registered_model`` or ``tokenskip-<model>-<dataset>`` (hub ids: last part, lowercased)."""
    if configured:
        return configured
    short = model_name.rstrip("/").split("/")[-1].lower()
    slug = re.sub(r"[^a-z0-9._-]+", "-", f"tokenskip-{short}-{dataset}".lower()).strip("-")
    return slug


def result_from_tags(version: Any) -> RatioResult | None:
    """The gate's view of a registered version (e.g. the current champion), from its tags."""
    tags = version.tags
    try:
        return RatioResult(
            float(tags["ratio"]),
            float(tags["accuracy"]),
            float(tags["mean_cot_tokens"]),
            float(tags["actual_ratio"]),
        )
    except (KeyError, ValueError):
        return None


def ensure_registered_model(tracking: Tracking, name: str) -> None:
    """Create the registered model unless it exists."""
    client = tracking.client

    def create() -> None:
        try:
            client.get_registered_model(name)
        except Exception as exc:
            if not is_missing(exc):
                raise
            client.create_registered_model(
                name, description="TokenSkip: controllable CoT compression; one version per ratio."
            )

    tracking.call(f"create registered model {name}", create)


def versions_of_content(tracking: Tracking, name: str, content: str) -> dict[str, Any]:
    """The versions already registered for this model and evaluation, by ratio label."""
    found = tracking.call(
        "search model versions",
        lambda: tracking.client.search_model_versions(
            f"name = '{name}' and tags.`{CONTENT_TAG}` = '{content}'"),
    )
    return {v.tags.get("ratio"): v for v in found if v.tags.get(KEY_TAG)}


def alias_version(tracking: Tracking, name: str, alias: str) -> Any | None:
    """The version an alias points to, or None (no such alias, or no such registered model)."""

    def get() -> Any | None:
        try:
            model = tracking.client.get_registered_model(name)
        except Exception as exc:
            if is_missing(exc):
                return None
            raise
        version = model.aliases.get(alias)
        return None if version is None else tracking.client.get_model_version(name, str(version))

    return tracking.call(f"get alias {alias}", get)


def baseline_champion(tracking: Tracking, name: str, content: str, existing: dict[str, Any]) -> Any | None:
    """The champion this model is gated against: the one from before it was first registered.

    On a re-run the alias may already point to one of its own versions; the earlier champion is
    then read from the ``previous_champion`` tag written on its versions.
    """
    previous = next((v.tags.get(PREVIOUS_CHAMPION_TAG) for v in existing.values()), None)
    if previous is None:
        champion = alias_version(tracking, name, CHAMPION)
        if champion is None or champion.tags.get(CONTENT_TAG) != content:
            return champion
        previous = champion.tags.get(PREVIOUS_CHAMPION_TAG, "none")
    if previous in ("", "none"):
        return None
    return tracking.call("get previous champion", lambda: tracking.client.get_model_version(name, previous))


def _interval(values: tuple[float, float]) -> str:
    return f"[{values[0]:.4g}, {values[1]:.4g}]"


def version_tags(
    ratio: float, row: Mapping[str, float], verdict: Verdict, run_ids: Mapping[str, str], previous: str,
    drops: Mapping[str, float],
) -> dict[str, str]:
    """Everything a user filters versions by: figures, the gate's reference, statistics, verdict and
    reason, the accuracy drop against each reference (``drops``), run ids."""
    tags = {
        "ratio": ratio_key(ratio),
        **{m: "none" if row[m] is None else f"{row[m]:.6g}" for m in METRICS},
    }
    paired = verdict.paired
    tags.update(
        reference=verdict.reference,
        decision=verdict.decision,
        accuracy_drop=f"{paired.accuracy_drop:.6g}",
        accuracy_drop_ci=_interval(paired.accuracy_drop_ci),
        token_reduction=f"{paired.token_reduction:.6g}",
        token_reduction_ci=_interval(paired.token_reduction_ci),
        mcnemar_p=f"{paired.mcnemar_p:.4g}",
        **{f"accuracy_drop_{ref}": f"{drop:.6g}" for ref, drop in drops.items()},
        gate="passed" if verdict.passed else "failed",
        gate_reason=verdict.reason,
        previous_champion=previous,
        **run_ids,
    )
    tags[KEY_TAG] = f"{run_ids[CONTENT_TAG]}:{ratio_key(ratio)}"
    return tags


def version_description(ratio: float, row: Mapping[str, Any], verdict: Verdict) -> str:
    """One line for the registry UI, e.g.
    ``g=0.6: accuracy 0.856 [0.83, 0.88], 85 CoT tokens (-37% vs original), gate passed``."""
    low, high = row.get("accuracy_ci") or (row["accuracy"], row["accuracy"])
    saved = verdict.paired.token_reduction
    gate = "gate passed" if verdict.passed else f"gate failed: {verdict.reason}"
    return (f"g={ratio_key(ratio)}: accuracy {row['accuracy']:.3f} [{low:.2f}, {high:.2f}], "
            f"{row['mean_cot_tokens']:.0f} CoT tokens ({-saved:+.0%} vs {verdict.reference}), {gate}")


def ensure_version(
    tracking: Tracking, name: str, source: str, model_id: str, run_id: str, tags: dict, description: str = ""
) -> Any:
    """The version with ``tags[KEY_TAG]``: found, or created with all its tags at once."""
    client = tracking.client
    key = tags[KEY_TAG]

    def create() -> Any:
        found = client.search_model_versions(f"name = '{name}' and tags.`{KEY_TAG}` = '{key}'")
        if found:
            return found[0]
        return client.create_model_version(name, source, run_id=run_id, tags=tags, model_id=model_id,
                                           description=description)

    version = tracking.call(f"register version {key}", create)
    for tag, value in tags.items():  # a re-run with other gate settings updates the verdict tags
        if version.tags.get(tag) != value:
            tracking.call(
                "set version tag",
                lambda t=tag, v=value: client.set_model_version_tag(name, version.version, t, v),
            )
    if description and version.description != description:
        tracking.call("describe version",
                      lambda: client.update_model_version(name, version.version, description=description))
    return version


def apply_aliases(tracking: Tracking, name: str, order: list[str]) -> None:
    """``champion`` -> order[0], ``challenger`` -> order[1] (removed when there is none)."""
    client = tracking.client
    if not order:
        return
    tracking.call("set champion", lambda: client.set_registered_model_alias(name, CHAMPION, order[0]))
    if len(order) > 1:
        tracking.call("set challenger", lambda: client.set_registered_model_alias(name, CHALLENGER, order[1]))
    elif alias_version(tracking, name, CHALLENGER) is not None:
        tracking.call("drop challenger", lambda: client.delete_registered_model_alias(name, CHALLENGER))


@dataclass
class Outcome:
    """What the registry holds for this pipeline run after the stage."""

    versions: dict[float, Any]
    verdicts: dict[float, Verdict]
    order: list[float]
    existing: dict[str, Any]
    baseline: Any | None
    drops: dict[float, dict[str, float]]  # per ratio, the accuracy drop against each reference


def outcome_report(
    name: str, parent_id: str, rows: dict, outcome: Outcome, final: Any | None
) -> dict[str, Any]:
    """reports/register.json (less timing): versions with verdict, role and alias; the champion."""
    aliases = dict(zip(outcome.order, ("champion", "challenger"), strict=False))
    entries = []
    for ratio in sorted(rows):
        verdict = outcome.verdicts[ratio]
        version = outcome.versions[ratio]
        entries.append(
            {
                "ratio": ratio,
                "version": str(version.version),
                "verdict": "passed" if verdict.passed else "failed",
                "reason": verdict.reason,
                "role": aliases.get(ratio, "challenger" if verdict.passed else "failed"),
                "alias": aliases.get(ratio),
                "accuracy": rows[ratio]["accuracy"],
                "mean_cot_tokens": rows[ratio]["mean_cot_tokens"],
                "accuracy_ci": rows[ratio].get("accuracy_ci"),
                "reference": verdict.reference,
                "decision": verdict.decision,
                "accuracy_drop": round(verdict.accuracy_drop, 6),
                "accuracy_drop_ci": list(verdict.paired.accuracy_drop_ci),
                "token_reduction": round(verdict.token_reduction, 6),
                "token_reduction_ci": list(verdict.paired.token_reduction_ci),
                "mcnemar_p": verdict.paired.mcnemar_p,
                **{f"accuracy_drop_{ref}": drop for ref, drop in outcome.drops[ratio].items()},
                "run_id": version.run_id,
            }
        )
    champion = None
    if final is not None:
        champion = {
            "version": str(final.version),
            "ratio": float(final.tags.get("ratio", "nan")),
            "from_this_run": final.tags.get(PARENT_RUN_TAG) == parent_id,
        }
    baseline = outcome.baseline
    return {
        "registered_model": name,
        "parent_run_id": parent_id,
        "versions": entries,
        "champion": champion,
        "previous_champion": str(baseline.version) if baseline is not None else None,
        "created_versions": len(outcome.versions) - len(outcome.existing),
        "reused_versions": len(outcome.existing),
    }
