"""Run the suites in an ephemeral Great Expectations context and summarise the results.

Each suite has its own pandas data asset, batch definition and ValidationDefinition, run on its
frame (a Checkpoint would pass the same ``batch_parameters`` -- one dataframe -- to all of them).
The data docs are built once at the end, as static HTML, into a temp folder that replaces
``docs_dir`` only when complete.

The report is a function of the inputs only (no wall-clock time, no run ids or timestamps): a re-run
on identical inputs writes identical bytes, so that stages depending on it in dvc.yaml (finetune)
are not invalidated. The stage's timing goes to a separate file (see ``cli.py``); the data docs
do carry GX run timestamps.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from tokenskip.core.io import replace_dir
from tokenskip.validate.suites import DESCRIBING_CHECKS, INDEX_COLUMNS, Thresholds, build_suites

SITE = "tokenskip"
MAX_EXAMPLES = 5
DOCS_EXAMPLES = 20


def _context(docs_dir: Path | None) -> Any:
    """An ephemeral (in-memory) context, quiet, with one filesystem data docs site (if any)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    sites = {} if docs_dir is None else {SITE: {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(docs_dir.resolve())},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }}
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        data_docs_sites=sites,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _plain(value: Any) -> Any:
    """JSON-friendly copy of a GX/numpy value (NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _example(row: dict[str, Any], columns: list[str]) -> str:
    """``id@g=0.5`` / ``id`` / ``g=0.5`` for one unexpected row."""
    parts = []
    for column in columns:
        value = _plain(row.get(column))
        parts.append(f"g={value:g}" if column == "ratio" and isinstance(value, float) else str(value))
    return "@".join(parts)


def _exception(result: Any) -> str | None:
    info = result.exception_info or {}
    infos = info.values() if "raised_exception" not in info else [info]
    for item in infos:
        if isinstance(item, dict) and item.get("raised_exception"):
            return str(item.get("exception_message"))
    return None


def _failure(suite: str, result: Any) -> dict[str, Any]:
    config = result.expectation_config
    details = result.result or {}
    columns = INDEX_COLUMNS[suite]
    examples: list[str] = []
    for row in details.get("partial_unexpected_index_list") or []:
        example = _example(row, columns)
        if example not in examples:
            examples.append(example)
    kwargs = config.kwargs
    described = _descriptions(details) if kwargs.get("column") in DESCRIBING_CHECKS else []
    return {
        "suite": suite,
        "name": (config.meta or {}).get("name", config.type),
        "expectation": config.type,
        "column": kwargs.get("column") or kwargs.get("column_list")
        or [kwargs.get("column_A"), kwargs.get("column_B")],
        "notes": config.notes,
        "unexpected_count": _plain(details.get("unexpected_count")),
        "example_ids": examples[:MAX_EXAMPLES],
        "details": described[:MAX_EXAMPLES],
        "exception": _exception(result),
    }


def _descriptions(details: dict[str, Any]) -> list[str]:
    """The unexpected values of a check that describes its broken records (``DESCRIBING_CHECKS``:
    ``<file>: record <id>: number ..``), in row order."""
    values = details.get("partial_unexpected_list") or []
    return list(dict.fromkeys(value for value in values if isinstance(value, str)))


def _run_suites(context: Any, frames: dict[str, pd.DataFrame], t: Thresholds) -> dict[str, Any]:
    import great_expectations as gx

    source = context.data_sources.add_pandas("tokenskip")
    results = {}
    for name, expectations in build_suites(t).items():
        suite = context.suites.add(gx.ExpectationSuite(name=name))
        for expectation in expectations:
            suite.add_expectation(expectation)
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite))
        results[name] = definition.run(
            batch_parameters={"dataframe": frames[name]},
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": DOCS_EXAMPLES,
                           "unexpected_index_column_names": INDEX_COLUMNS[name]},
        )
    return results


def _figures(frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Per-ratio figures of the pruned data and the training ratio mix."""
    by_ratio = {
        f"{row['ratio']:g}": {"records": row["records"], "mean_actual_ratio": row["mean_actual_ratio"]}
        for row in frames["pruned_ratios"].to_dict("records")
    }
    mix = {f"{row['ratio']:g}": row["share"] for row in frames["training_ratio_mix"].to_dict("records")}
    return _plain({"pruned": by_ratio, "sample_ratio_share": mix})


def validate_frames(
    frames: dict[str, pd.DataFrame], t: Thresholds, docs_dir: Path | None
) -> dict[str, Any]:
    """Validate every frame and build the data docs into ``docs_dir`` (skipped when None);
    return the report dict: ``success``, per-suite ``suites`` statistics, ``failures`` (name,
    unexpected count, example ids, details), ``figures`` and ``docs`` -- a function of the frames only."""
    if docs_dir is None:
        results = _run_suites(_context(None), frames, t)
    else:
        docs_dir.parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix=f".{docs_dir.name}.tmp-", dir=docs_dir.parent))
        try:
            context = _context(build)
            results = _run_suites(context, frames, t)
            context.build_data_docs(site_names=[SITE])
            replace_dir(build, docs_dir)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
    suites, failures = {}, []
    for name, result in results.items():
        suites[name] = {"success": bool(result.success), "rows": len(frames[name]),
                        **_plain(dict(result.statistics))}
        failures += [_failure(name, r) for r in result.results if not r.success]
    return {
        "success": all(s["success"] for s in suites.values()),
        "suites": suites,
        "failures": failures,
        "figures": _figures(frames),
        "docs": None if docs_dir is None else str(docs_dir / "index.html"),
    }


def format_failure(failure: dict[str, Any]) -> str:
    """One line per failed expectation: name, unexpected count, up to five example ids and, for
    checks that describe their records, up to five descriptions."""
    column = failure["column"]
    column = ", ".join(str(c) for c in column) if isinstance(column, list) else column
    line = f"FAILED {failure['name']} ({failure['expectation']} on {column})"
    if failure["exception"]:
        return f"{line}: error: {failure['exception']}"
    examples = ", ".join(failure["example_ids"]) or "-"
    details = "".join(f"; {detail}" for detail in failure.get("details", []))
    return f"{line}: {failure['unexpected_count']} unexpected; e.g. {examples}{details}"
