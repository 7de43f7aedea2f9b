"""The README's results and gate tables, generated from the committed reports so they cannot drift.

    python -m tokenskip_flows.readme           # rewrite the README between its results markers
    python -m tokenskip_flows.readme --check   # exit 1 when the README's tables differ from the reports

tests/unit/test_readme.py runs the check.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tokenskip_flows.reports import champion_line, champion_of, read_report

REPO_ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- results:begin (python -m tokenskip_flows.readme) -->", "<!-- results:end -->"
BASELINE_ROWS = {"original": "base model (original)", "truncation_0.5": "truncation g=0.5",
                 "be_concise": '"Be concise."'}


def _ci(value: Any) -> str:
    return f"[{value[0]:.3f}, {value[1]:.3f}]" if value else ""


def _result_row(label: str, m: Mapping[str, Any]) -> str:
    latency = f"{m['latency_s']:.3f}" if m.get("latency_s") is not None else ""
    return (f"| {label} | {m['accuracy']:.3f} {_ci(m.get('accuracy_ci'))} | {m['mean_cot_tokens']:.1f} | "
            f"{m['actual_ratio']:.2f} | {latency} |")


def results_table(evaluate: Mapping[str, Any], register: Mapping[str, Any] | None) -> str:
    """Accuracy (95% CI), mean CoT tokens, actual ratio and latency per ratio and main baseline."""
    roles = {v["ratio"]: v.get("alias") for v in (register or {}).get("versions", [])}
    lines = ["| setting | accuracy [95% CI] | mean CoT tokens | actual ratio | latency (s, batch 1) |",
             "|---|---|---|---|---|"]
    baselines = evaluate.get("baselines") or {}
    if "original" in baselines:
        lines.append(_result_row(BASELINE_ROWS["original"], baselines["original"]))
    for key in sorted(evaluate["ratios"], key=lambda k: -float(k)):
        role = roles.get(float(key))
        label = f"TokenSkip g={key}" + (f" ({role})" if role else "")
        lines.append(_result_row(label, evaluate["ratios"][key]))
    for name in ("truncation_0.5", "be_concise"):
        if name in baselines:
            lines.append(_result_row(BASELINE_ROWS[name], baselines[name]))
    return "\n".join(lines)


def gate_table(register: Mapping[str, Any]) -> str:
    """Per ratio: both accuracy drops, the judged one's CI, the token reduction's CI, McNemar's p."""
    lines = ["| g | drop vs original | drop vs g=1.0 | judged drop [95% CI] | token reduction [95% CI] | "
             "McNemar p | verdict |", "|---|---|---|---|---|---|---|"]
    for v in sorted(register["versions"], key=lambda v: -v["ratio"]):
        verdict = v["verdict"] + (f" ({v['alias']})" if v.get("alias") else "")
        original = v.get("accuracy_drop_original")
        lines.append(
            f"| {v['ratio']:g} | {'' if original is None else f'{original:+.3f}'} | "
            f"{v['accuracy_drop_g1']:+.3f} | {v['accuracy_drop']:+.3f} {_ci(v['accuracy_drop_ci'])} | "
            f"{v['token_reduction']:.3f} {_ci(v['token_reduction_ci'])} | {v['mcnemar_p']:.3g} | {verdict} |")
    return "\n".join(lines)


def results_section(reports: Path) -> str:
    """The generated block of the README (between the markers)."""
    evaluate = read_report(reports / "evaluate.json")
    register = read_report(reports / "register.json")
    if evaluate is None:
        return "(no reports/evaluate.json)"
    parts = [f"Evaluated on {evaluate['n_test']} test problems.", "", results_table(evaluate, register)]
    if register and register.get("versions"):
        first = register["versions"][0]
        parts += ["", f"Promotion gate: reference `{first['reference']}`, decision `{first['decision']}` "
                  f"(95% paired bootstrap CIs, exact McNemar test on the same questions).", "",
                  gate_table(register)]
        parts += ["", champion_line(champion_of(register)) + "."]
    return "\n".join(parts)


def render(readme: str, section: str) -> str:
    """``readme`` with the text between the markers replaced by ``section``."""
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{section}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or ``--check``) the README's generated results block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    args = parser.parse_args(argv)
    readme = REPO_ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    wanted = render(text, results_section(REPO_ROOT / "reports"))
    if args.check:
        if wanted != text:
            print("README.md: the results block differs from reports/; run python -m tokenskip_flows.readme",
                  file=sys.stderr)
            return 1
        return 0
    readme.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
