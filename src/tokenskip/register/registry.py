"""The model registry side of the register stage: versions, their tags, and what a version says
about itself (its gate figures, its lineage).

One version per (fine-tuned model, evaluation, ratio), keyed by the version tag ``tokenskip.key``
= ``<content key>:<ratio>``, where the content key hashes the model's files and what the evaluation
found (figures, per-question results, settings; never its latencies or throughput, which differ
between two evaluations of the same weights): a version is looked up before it is created, and
created with all its tags in one call, so a re-run creates nothing new, whoever runs it (the flow
or a plain ``tokenskip register``), and a retry after a failure completes the job without a
half-tagged version.

A version carries at most eight tags, what a reader filters by at a glance (:data:`VERSION_TAGS`):
ratio, accuracy, actual ratio, the gate's verdict, reason and thresholds, the key, and the DVC
experiment when ``dvc exp run`` registered it. The full figures (CoT tokens, latency, throughput,
the paired statistics) are metrics of the version's logged model, and its lineage (content key,
pipeline run, finetune run, the champion it was gated against) the logged model's tags
(:mod:`tokenskip.register.runs`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tokenskip.core.io import folder_digests, read_jsonl
from tokenskip.core.prompts import ratio_key
from tokenskip.register.gate import RatioResult, Verdict
from tokenskip.tracking.retries import is_missing
from tokenskip.tracking.store import Tracking

KEY_TAG = "tokenskip.key"  # <content key>:<ratio>: one version per model, evaluation and ratio
EXPERIMENT_TAG = "dvc_experiment_baseline"  # the DVC experiment (dvc exp run) that registered it
VERSION_TAGS = ("ratio", "accuracy", "actual_ratio", "gate", "gate_reason", "gate_thresholds", KEY_TAG,
                EXPERIMENT_TAG)
# lineage, on the version's logged model (older versions carry them as version tags)
CONTENT_TAG = "tokenskip.content"  # the content key alone
PARENT_RUN_TAG = "parent_run_id"
FINETUNE_RUN_TAG = "finetune_run_id"
PREVIOUS_CHAMPION_TAG = "previous_champion"
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


def found_or_none(tracking: Tracking, what: str, fetch: Callable[[], Any]) -> Any | None:
    """``fetch()`` as one tracking call, or None when the store says the object does not exist
    (RESOURCE_DOES_NOT_EXIST); every other failure is the tracking layer's."""

    def get() -> Any | None:
        try:
            return fetch()
        except Exception as exc:
            if is_missing(exc):
                return None
            raise

    return tracking.call(what, get)


def logged_model(tracking: Tracking, version: Any) -> Any | None:
    """The logged model a version was registered from (its ``model_id``, or its source
    ``models:/<model id>``: search results leave the id out); None for a version without one."""
    source = version.source or ""
    model_id = version.model_id or (source[len("models:/"):] if source.startswith("models:/") else None)
    if not model_id:
        return None
    return found_or_none(tracking, "get logged model", lambda: tracking.client.get_logged_model(model_id))


def lineage(tracking: Tracking, version: Any) -> dict[str, str]:
    """Where a version came from: its logged model's tags, under the version's own tags (older
    versions carry ``parent_run_id``, ``previous_champion``, ... there)."""
    model = logged_model(tracking, version)
    return {**(model.tags if model is not None else {}), **version.tags}


def version_result(tracking: Tracking, version: Any) -> RatioResult | None:
    """The gate's view of a registered version (e.g. the current champion): ratio, accuracy and
    actual ratio from its tags, mean CoT tokens from its logged model's metrics (older versions:
    a tag); None when a figure is missing."""
    tags = version.tags
    tokens = tags.get("mean_cot_tokens")
    if tokens is None:
        model = logged_model(tracking, version)
        metrics = (model.metrics or []) if model is not None else []
        tokens = next((m.value for m in metrics if m.key == "mean_cot_tokens"), None)
    try:
        return RatioResult(float(tags["ratio"]), float(tags["accuracy"]), float(tokens),
                           float(tags["actual_ratio"]))
    except (KeyError, TypeError, ValueError):
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


def content_of(version: Any) -> str | None:
    """The content key of a version (from its ``tokenskip.key``; older versions: their tag)."""
    key = version.tags.get(KEY_TAG)
    return key.rpartition(":")[0] if key else version.tags.get(CONTENT_TAG)


def versions_of_content(tracking: Tracking, name: str, content: str) -> dict[str, Any]:
    """The versions already registered for this model and evaluation, by ratio label."""
    found = tracking.call(
        "search model versions",
        lambda: tracking.client.search_model_versions(
            f"name = '{name}' and tags.`{KEY_TAG}` LIKE '{content}:%'"),
    )
    return {v.tags.get("ratio"): v for v in found if content_of(v) == content}


def version_tags(ratio: float, row: Mapping[str, Any], verdict: Verdict, content: str) -> dict[str, str]:
    """The version's tags (:data:`VERSION_TAGS`, less the experiment): ratio, accuracy, actual
    ratio, the verdict, its reason and the thresholds it was judged against, and the key."""
    thresholds = verdict.thresholds
    return {
        "ratio": ratio_key(ratio),
        "accuracy": f"{row['accuracy']:.6g}",
        "actual_ratio": f"{row['actual_ratio']:.6g}",
        "gate": "passed" if verdict.passed else "failed",
        "gate_reason": verdict.reason,
        "gate_thresholds": (thresholds.describe(verdict.reference) if thresholds
                            else f"reference={verdict.reference} decision={verdict.decision}"),
        KEY_TAG: f"{content}:{ratio_key(ratio)}",
    }


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
