"""The gate's aliases (``champion``, ``challenger``; never stages): who holds them, the champion a
pipeline run is gated against, and where the champion came from.

A run moves the aliases only when it promotes (``dvc repro`` and the flow, not ``dvc exp run``) and
at least one of its versions passed its gate; otherwise the aliases stay where they were, and the
versions holding them keep the verdict tags they earned (the report says that they fail this
run's gate, if they do).
"""

from __future__ import annotations

from typing import Any

from tokenskip.register.gate import parse_thresholds
from tokenskip.register.registry import (
    PARENT_RUN_TAG,
    PREVIOUS_CHAMPION_TAG,
    content_of,
    found_or_none,
    lineage,
)
from tokenskip.tracking.names import PARENT_TAG
from tokenskip.tracking.store import Tracking

CHAMPION = "champion"
CHALLENGER = "challenger"


def _registered_model(tracking: Tracking, name: str) -> Any | None:
    return found_or_none(tracking, "get registered model", lambda: tracking.client.get_registered_model(name))


def held_aliases(tracking: Tracking, name: str) -> dict[str, str]:
    """Version -> the alias it holds (``champion``, ``challenger``); empty without a model."""
    model = _registered_model(tracking, name)
    aliases = dict(model.aliases) if model is not None else {}
    return {str(version): alias for alias, version in aliases.items() if alias in (CHAMPION, CHALLENGER)}


def alias_version(tracking: Tracking, name: str, alias: str) -> Any | None:
    """The version an alias points to, or None (no such alias, or no such registered model)."""
    model = _registered_model(tracking, name)
    version = dict(model.aliases).get(alias) if model is not None else None
    if version is None:
        return None
    return tracking.call(f"get alias {alias}", lambda: tracking.client.get_model_version(name, str(version)))


def baseline_champion(tracking: Tracking, name: str, content: str, existing: dict[str, Any]) -> Any | None:
    """The champion this model is gated against: the one from before it was first registered.

    On a re-run the alias may already point to one of its own versions; the earlier champion is
    then read from the ``previous_champion`` lineage of its versions.
    """
    previous = next((lineage(tracking, v).get(PREVIOUS_CHAMPION_TAG) for v in existing.values()), None)
    if previous is None:
        champion = alias_version(tracking, name, CHAMPION)
        if champion is None or content_of(champion) != content:
            return champion
        previous = lineage(tracking, champion).get(PREVIOUS_CHAMPION_TAG, "none")
    if previous in ("", "none"):
        return None
    return tracking.call("get previous champion", lambda: tracking.client.get_model_version(name, previous))


def apply_aliases(tracking: Tracking, name: str, order: list[str]) -> None:
    """``champion`` -> order[0], ``challenger`` -> order[1] (removed when there is none); nothing
    moves when ``order`` is empty."""
    client = tracking.client
    if not order:
        return
    tracking.call("set champion", lambda: client.set_registered_model_alias(name, CHAMPION, order[0]))
    if len(order) > 1:
        tracking.call("set challenger", lambda: client.set_registered_model_alias(name, CHALLENGER, order[1]))
    elif alias_version(tracking, name, CHALLENGER) is not None:
        tracking.call("drop challenger", lambda: client.delete_registered_model_alias(name, CHALLENGER))


def pipeline_run_of(tracking: Tracking, version: Any) -> str | None:
    """The pipeline run that registered ``version``: its lineage, else the parent of its run."""
    found = lineage(tracking, version).get(PARENT_RUN_TAG)
    if found or not version.run_id:
        return found
    run = tracking.call("get version run", lambda: tracking.client.get_run(version.run_id))
    return run.data.tags.get(PARENT_TAG)


def _passed_under(tags: dict[str, str]) -> dict[str, Any] | None:
    """The thresholds a version's verdict was reached under (older versions: reference, decision)."""
    found = parse_thresholds(tags.get("gate_thresholds"))
    if found is None and "reference" in tags:
        found = {"reference": tags["reference"], "decision": tags.get("decision")}
    return found


def champion_entry(tracking: Tracking, champion: Any | None, promoted: str | None) -> dict[str, Any] | None:
    """reports/register.json's ``champion``: the version the alias points to after this run, its
    ratio, ``from_this_run`` (this run's gate chose it and set the alias: ``promoted``), the
    pipeline run that registered it, and the verdict and thresholds its tags hold."""
    if champion is None:
        return None
    tags = champion.tags
    try:
        ratio: float | None = float(tags["ratio"])
    except (KeyError, ValueError):
        ratio = None
    return {
        "version": str(champion.version),
        "ratio": ratio,
        "from_this_run": str(champion.version) == promoted,
        "pipeline_run_id": pipeline_run_of(tracking, champion),
        "gate": tags.get("gate"),
        "passed_under": _passed_under(tags),
    }
