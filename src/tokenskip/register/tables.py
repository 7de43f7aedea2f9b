"""The results and promotion-gate tables, from reports/evaluate.json and reports/register.json.

One renderer for every place that shows them: the README's generated block
(tokenskip.register.readme_blocks), the Prefect flow's artifacts and its closing summary
(tokenskip_flows.reports), and the experiments' tables (experiments/seeds.py). Rows are lists of
dicts whose keys are the column headers and whose values are the formatted cells; markdown_table
draws any of them. Pure functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

RESULT_COLUMNS = ("setting", "accuracy [95% CI]", "mean CoT tokens", "actual ratio", "latency (s, batch 1)")
GATE_COLUMNS = ("g", "drop vs original", "drop vs g=1.0", "judged drop [95% CI]", "token reduction [95% CI]",
                "McNemar p", "verdict")
# evaluate's fields that are measured in seconds: they differ from box to box and run to run
TIMING_FIELDS = ("latency_s", "throughput_tok_s")
BASELINE_LABELS = {"original": "base model (original)", "be_concise": '"Be concise."',
                   "only_numbers": '"Only numbers."', "lc_prompt_0.5": "reduce 50% of the words (prompt)"}


def cell(value: Any) -> str:
    """A markdown table cell: None empty, floats to 4 significant digits, a pair of numbers as an
    interval, lists and dicts as JSON, pipes escaped, one line."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if is_interval(value):
        return f"[{value[0]:.3g}, {value[1]:.3g}]"
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True)
    return str(value).replace("|", "\\|").replace("\n", " ")


def is_interval(value: Any) -> bool:
    """A confidence interval: two numbers."""
    return (isinstance(value, list | tuple) and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value))


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured markdown table of ``rows`` over ``columns`` (default: the first row's keys)."""
    columns = list(columns if columns is not None else (rows[0] if rows else []))
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def _number(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _interval(value: Any) -> str:
    return f"[{value[0]:.3f}, {value[1]:.3f}]" if value else ""


def _with_interval(value: Any, interval: Any, spec: str) -> str:
    return " ".join(part for part in (_number(value, spec), _interval(interval)) if part)


def result_row(label: str, figures: Mapping[str, Any]) -> dict[str, str]:
    """One row of the results table: accuracy with its 95% CI, CoT tokens, actual ratio, latency."""
    return {
        "setting": label,
        "accuracy [95% CI]": _with_interval(figures.get("accuracy"), figures.get("accuracy_ci"), ".3f"),
        "mean CoT tokens": _number(figures.get("mean_cot_tokens"), ".1f"),
        "actual ratio": _number(figures.get("actual_ratio"), ".2f"),
        "latency (s, batch 1)": _number(figures.get("latency_s"), ".3f"),
    }


def baseline_label(name: str) -> str:
    """A baseline's row label: ``truncation_0.5`` -> ``truncation g=0.5``, the prompts in quotes."""
    if name.startswith("truncation_"):
        return f"truncation g={name.removeprefix('truncation_')}"
    return BASELINE_LABELS.get(name, name)


def roles(register: Mapping[str, Any] | None) -> dict[float, str]:
    """The alias (champion, challenger) of each registered ratio."""
    versions = (register or {}).get("versions") or []
    return {float(v["ratio"]): v["alias"] for v in versions if v.get("alias")}


def result_rows(evaluate: Mapping[str, Any], register: Mapping[str, Any] | None = None,
                baselines: Sequence[str] | None = None) -> list[dict[str, str]]:
    """The original model first, then TokenSkip from g = 1.0 down (with its alias), then the other
    baselines: those named in ``baselines`` in that order, or every one in the report's order."""
    reported = evaluate.get("baselines") or {}
    aliases = roles(register)
    rows = [result_row(baseline_label("original"), reported["original"])] if "original" in reported else []
    for key in sorted(evaluate.get("ratios") or {}, key=lambda k: -float(k)):
        alias = aliases.get(float(key))
        label = f"TokenSkip g={key}" + (f" ({alias})" if alias else "")
        rows.append(result_row(label, evaluate["ratios"][key]))
    if baselines is None:
        names = [name for name in reported if name != "original"]
    else:
        names = [name for name in baselines if name in reported]
    return rows + [result_row(baseline_label(name), reported[name]) for name in names]


def results_markdown(evaluate: Mapping[str, Any], register: Mapping[str, Any] | None = None,
                     baselines: Sequence[str] | None = None) -> str:
    """The results table headed by the test-set size."""
    head = f"Evaluated on {evaluate['n_test']} test problems." if evaluate.get("n_test") is not None else ""
    table = markdown_table(result_rows(evaluate, register, baselines), RESULT_COLUMNS)
    return f"{head}\n\n{table}" if head else table


def gate_row(version: Mapping[str, Any]) -> dict[str, str]:
    """One registered version's gate figures: its ratio, both accuracy drops, the judged one with
    its CI, the token reduction with its CI, McNemar's p, the verdict (with the alias it got) and
    the reason; GATE_COLUMNS leaves out the version number and the reason."""
    verdict = cell(version.get("verdict")) + (f" ({version['alias']})" if version.get("alias") else "")
    return {
        "version": cell(version.get("version")),
        "g": _number(version.get("ratio"), "g"),
        "drop vs original": _number(version.get("accuracy_drop_original"), "+.3f"),
        "drop vs g=1.0": _number(version.get("accuracy_drop_g1"), "+.3f"),
        "judged drop [95% CI]": _with_interval(version.get("accuracy_drop"), version.get("accuracy_drop_ci"),
                                               "+.3f"),
        "token reduction [95% CI]": _with_interval(version.get("token_reduction"),
                                                   version.get("token_reduction_ci"), ".3f"),
        "McNemar p": _number(version.get("mcnemar_p"), ".3g"),
        "verdict": verdict,
        "reason": cell(version.get("reason")),
    }


def gate_rows(register: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per registered version of reports/register.json (its ``versions`` list), g = 1.0 first."""
    versions = sorted(register.get("versions") or [], key=lambda v: -float(v["ratio"]))
    return [gate_row(v) for v in versions]


def gate_markdown(register: Mapping[str, Any], show_version: bool = True) -> str:
    """What the gate judged against, the gate table and the champion line."""
    versions = register.get("versions") or []
    if not versions:
        return f"(no versions registered)\n\n{champion_line(champion_of(register), show_version)}"
    first = versions[0]
    head = (f"Promotion gate: reference `{first.get('reference')}`, decision `{first.get('decision')}` "
            "(95% paired bootstrap CIs, exact McNemar test on the same questions).")
    table = markdown_table(gate_rows(register), GATE_COLUMNS)
    return f"{head}\n\n{table}\n\n{champion_line(champion_of(register), show_version)}"


def champion_of(register: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The gate's decision in reports/register.json: {registered_model, version, ratio} of the
    champion, with ``from_this_run: False`` when the alias stayed on an earlier run's version
    (nothing passed in this one); None without a champion."""
    champion = (register or {}).get("champion")
    if not champion:
        return None
    decision = {"registered_model": register.get("registered_model"), "version": str(champion["version"]),
                "ratio": champion.get("ratio")}
    return decision if champion.get("from_this_run", True) else {**decision, "from_this_run": False}


def champion_line(decision: Mapping[str, Any] | None, show_version: bool = True) -> str:
    """One line: which version is champion and at which ratio, or that none passed. Without
    ``show_version`` the alias stands for the version (a registry's numbers are its own)."""
    if not decision:
        return "Champion: none (no version passed the gate)"
    model = decision.get("registered_model") or "model"
    name = f"{model} version {decision['version']}" if show_version else f"{model}@champion"
    champion = f"{name} (ratio {decision.get('ratio')})"
    if decision.get("from_this_run", True):
        return f"Champion: {champion}"
    return ("Champion: none from this run (no ratio passed the gate); the alias stays on an earlier "
            f"run's {champion}")


def replace_block(text: str, begin: str, end: str, body: str, source: str = "the text") -> str:
    """``text`` with what lies between the ``begin`` and ``end`` marker lines replaced by ``body``."""
    if begin not in text or end not in text:
        raise ValueError(f"{source}: no {begin} ... {end} markers")
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    return f"{head}{begin}\n{body}\n{end}{tail}"


def block(text: str, begin: str, end: str) -> str | None:
    """What lies between the markers (without the newlines next to them), or None without them."""
    if begin not in text or end not in text:
        return None
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")
