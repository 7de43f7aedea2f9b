"""Turn the stages' reports (reports/validate.json, evaluate.json, register.json) into the
markdown and tables the Prefect flow publishes and prints. The results and gate tables come from
the library's one renderer (tokenskip.register.tables, tokenskip.register.summary); the data
validation summary is the flow's own. Pure functions, no Prefect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.register.summary import run_summary
from tokenskip.register.tables import (
    cell,
    champion_line,
    champion_of,
    gate_rows,
    is_interval,
    markdown_table,
    result_rows,
    results_markdown,
)

__all__ = ["champion_line", "champion_of", "evaluation_rows", "failure_line", "final_tables", "gate_rows",
           "markdown_table", "read_report", "results_markdown", "validation_markdown"]


def read_report(path: Path) -> dict[str, Any] | None:
    """A stage report as a dict, or None when the stage has not written it (yet)."""
    if not Path(path).is_file():
        return None
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TokenSkipError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise TokenSkipError(f"{path}: top level must be an object")
    return doc


def evaluation_rows(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """The results table's rows (the Prefect table artifact): the original, every ratio, every baseline."""
    return result_rows(report)


def final_tables(evaluate: Mapping[str, Any] | None, register: Mapping[str, Any] | None) -> str:
    """What a flow run ends with: the results and gate tables and the champion line."""
    return run_summary(evaluate, register)


def _metrics(metrics: Any) -> dict[str, Any]:
    if not isinstance(metrics, Mapping):
        return {}
    return {k: v for k, v in metrics.items() if is_interval(v) or not isinstance(v, dict | list)}


def validation_markdown(report: Mapping[str, Any], docs_dir: Path) -> str:
    """The validation summary: verdict, one row per suite, the failures, a link to the data docs."""
    verdict = "passed" if report.get("success") else "FAILED"
    lines = [f"### Data validation: {verdict}", ""]
    suites = report.get("suites") or report.get("statistics") or {}
    if isinstance(suites, Mapping) and suites:
        rows = [{"suite": name, **_metrics(stats)} for name, stats in suites.items()]
        columns = ["suite", *dict.fromkeys(k for row in rows for k in row if k != "suite")]
        lines += [markdown_table(rows, columns), ""]
    failures = report.get("failures") or report.get("failed_expectations") or []
    if failures:
        lines.append(f"Failed expectations ({len(failures)}):")
        lines += [f"- {failure_line(item)}" for item in failures[:20]]
        lines.append("")
    index = _docs_index(Path(docs_dir))
    if index is not None:
        lines.append(f"Data docs: [{index.name}]({index.resolve().as_uri()})")
    else:
        lines.append(f"Data docs: not found under {docs_dir}")
    return "\n".join(lines)


def failure_line(item: Any) -> str:
    """One failed expectation: suite: name; column; unexpected count; example ids."""
    if not isinstance(item, Mapping):
        return cell(item)
    parts = [f"{item.get('suite', '?')}: {item.get('name') or item.get('expectation', '?')}"]
    if item.get("column"):
        parts.append(f"column {cell(item['column'])}")
    if item.get("unexpected_count") is not None:
        parts.append(f"{item['unexpected_count']} unexpected")
    if item.get("example_ids"):
        parts.append("e.g. " + ", ".join(str(i) for i in item["example_ids"][:5]))
    if item.get("exception"):
        parts.append(f"exception {cell(item['exception'])}")
    return "; ".join(parts)


def _docs_index(docs_dir: Path) -> Path | None:
    if not docs_dir.is_dir():
        return None
    candidates = sorted(docs_dir.rglob("index.html"), key=lambda p: len(p.parts))
    return candidates[0] if candidates else None
