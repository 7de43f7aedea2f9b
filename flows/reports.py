"""Turn the stages' reports (reports/validate.json, evaluate.json, register.json) into the
markdown and tables the Prefect flow publishes and prints. Pure functions, no Prefect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError

EVAL_COLUMNS = ("accuracy", "accuracy_ci", "mean_cot_tokens", "actual_ratio", "latency_s", "throughput_tok_s")
GATE_COLUMNS = ("version", "ratio", "verdict", "alias", "accuracy", "accuracy_ci", "reference", "decision",
                "accuracy_drop", "accuracy_drop_ci", "token_reduction", "token_reduction_ci", "mcnemar_p",
                "reason")


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


def fmt(value: Any) -> str:
    """A table cell: floats to 4 significant digits, None as an empty cell, pipes escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if _is_interval(value):
        return f"[{value[0]:.3g}, {value[1]:.3g}]"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _is_interval(value: Any) -> bool:
    return (isinstance(value, list | tuple) and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value))


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub-flavoured markdown table of ``rows`` over ``columns``."""
    head = "| " + " | ".join(columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def _ratio_sort_value(name: str) -> float:
    try:
        return -float(name)
    except ValueError:
        return 0.0


def evaluation_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per ratio (g = 1.0 first, then decreasing) and one per baseline."""
    rows: list[dict[str, Any]] = []
    ratios = report.get("ratios") or {}
    for name in sorted(ratios, key=_ratio_sort_value):
        rows.append({"model": "tokenskip", "setting": f"g={name}", **_metrics(ratios[name])})
    for name, metrics in (report.get("baselines") or {}).items():
        rows.append({"model": "baseline", "setting": name, **_metrics(metrics)})
    return rows


def _metrics(metrics: Any) -> dict[str, Any]:
    if not isinstance(metrics, Mapping):
        return {}
    return {k: v for k, v in metrics.items() if _is_interval(v) or not isinstance(v, (dict, list))}


def evaluation_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The table's columns: model, setting, the known metrics, then any other metric seen."""
    seen = [k for row in rows for k in row if k not in ("model", "setting")]
    others = [k for k in dict.fromkeys(seen) if k not in EVAL_COLUMNS]
    return ["model", "setting", *[c for c in EVAL_COLUMNS if c in seen], *others]


def evaluation_markdown(report: Mapping[str, Any]) -> str:
    """The evaluation table as markdown, headed by the test-set size."""
    rows = evaluation_rows(report)
    n_test = report.get("n_test")
    title = f"### Evaluation ({n_test} test problems)" if n_test is not None else "### Evaluation"
    return f"{title}\n\n{markdown_table(rows, evaluation_columns(rows))}"


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
        return fmt(item)
    parts = [f"{item.get('suite', '?')}: {item.get('name') or item.get('expectation', '?')}"]
    if item.get("column"):
        parts.append(f"column {fmt(item['column'])}")
    if item.get("unexpected_count") is not None:
        parts.append(f"{item['unexpected_count']} unexpected")
    if item.get("example_ids"):
        parts.append("e.g. " + ", ".join(str(i) for i in item["example_ids"][:5]))
    if item.get("exception"):
        parts.append(f"exception {fmt(item['exception'])}")
    return "; ".join(parts)


def _docs_index(docs_dir: Path) -> Path | None:
    if not docs_dir.is_dir():
        return None
    candidates = sorted(docs_dir.rglob("index.html"), key=lambda p: len(p.parts))
    return candidates[0] if candidates else None


def gate_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per registered version (ratio, verdict, alias, reason, ...), by ratio."""
    versions = report.get("versions") or []
    if isinstance(versions, Mapping):
        versions = [{"ratio": k, **v} if isinstance(v, Mapping) else {"ratio": k, "version": v}
                    for k, v in versions.items()]
    rows = [_metrics(v) for v in versions if isinstance(v, Mapping)]
    return sorted(rows, key=lambda r: _ratio_sort_value(str(r.get("ratio", ""))))


def gate_markdown(report: Mapping[str, Any]) -> str:
    """The gate decisions table plus the champion line."""
    rows = gate_rows(report)
    seen = list(dict.fromkeys(k for row in rows for k in row))
    columns = [c for c in GATE_COLUMNS if c in seen] + [c for c in seen if c not in GATE_COLUMNS]
    name = report.get("registered_model", "")
    table = markdown_table(rows, columns) if rows else "(no versions registered)"
    return f"### Promotion gate: {name}\n\n{table}\n\n{champion_line(champion_of(report))}"


def champion_of(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The gate decision: {registered_model, version, ratio} of the champion, or None; with
    ``from_this_run: False`` when the alias stayed on an earlier run's version (nothing passed)."""
    if not report:
        return None
    champ = report.get("champion")
    version = report.get("champion_version")
    ratio = report.get("champion_ratio")
    from_this_run = True
    if isinstance(champ, Mapping):
        version = champ.get("version", version)
        ratio = champ.get("ratio", ratio)
        from_this_run = champ.get("from_this_run", True)
    elif champ is not None:
        version = champ
    if version is None:
        return None
    decision = {"registered_model": report.get("registered_model"), "version": str(version), "ratio": ratio}
    return decision if from_this_run else {**decision, "from_this_run": False}


def champion_line(decision: Mapping[str, Any] | None) -> str:
    """One human line: which version is champion, at which ratio, or that none passed."""
    if not decision:
        return "Champion: none (no version passed the gate)"
    model = decision.get("registered_model") or "model"
    champion = f"{model} version {decision['version']} (ratio {decision.get('ratio')})"
    if decision.get("from_this_run", True):
        return f"Champion: {champion}"
    return ("Champion: none from this run (no ratio passed the gate); the alias stays on an earlier "
            f"run's {champion}")
