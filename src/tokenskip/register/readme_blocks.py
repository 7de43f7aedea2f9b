"""The README's generated blocks, drawn from reports/evaluate.json and reports/register.json: the
headline (the promoted ratio, its tokens and accuracy) and the results block (the results table,
the gate table and the champion, by tokenskip.register.summary).

    python -m tokenskip.register.readme_blocks           # rewrite README.md's blocks from reports/
    python -m tokenskip.register.readme_blocks --check   # exit 1 when a block does not match

The check accepts blocks drawn from the working tree's reports, or from them with the timings
(latency, throughput) of the committed reports (``git show HEAD:reports/evaluate.json``): a fresh
clone's ``make run`` reproduces every other figure but measures its own seconds.
tests/unit/test_readme.py runs the check.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.prompts import ratio_key
from tokenskip.register.summary import run_summary
from tokenskip.register.tables import TIMING_FIELDS, block, replace_block

REPO_ROOT = Path(__file__).resolve().parents[3]
COMMAND = "python -m tokenskip.register.readme_blocks"
BEGIN, END = f"<!-- results:begin ({COMMAND}) -->", "<!-- results:end -->"
HEADLINE_BEGIN, HEADLINE_END = f"<!-- headline:begin ({COMMAND}) -->", "<!-- headline:end -->"
MAIN_BASELINES = ("truncation_0.5", "be_concise")  # the README's rows besides the original
REPORTS = ("evaluate.json", "register.json")


def results_block(evaluate: Mapping[str, Any] | None, register: Mapping[str, Any] | None) -> str:
    """The text between the README's markers. No version numbers: a registry numbers its own."""
    return run_summary(evaluate, register, MAIN_BASELINES, show_version=False)


def headline(evaluate: Mapping[str, Any] | None, register: Mapping[str, Any] | None) -> str:
    """One sentence: which ratio the gate promoted, the tokens it saves and the accuracy it costs
    against the gate's reference (no timings: they are each box's own)."""
    if not evaluate or not register:
        return "(no reports/evaluate.json or reports/register.json)"
    n_test = evaluate.get("n_test")
    champion = next((v for v in register.get("versions") or [] if v.get("alias") == "champion"), None)
    if champion is None:
        return f"**The committed run ({n_test} test problems): the gate promotes no version.**"
    reference_name = champion.get("reference", "original")
    if reference_name == "original":
        reference, whose = (evaluate.get("baselines") or {}).get("original") or {}, "the original model's"
    else:
        reference, whose = evaluate["ratios"][ratio_key(1.0)], "TokenSkip at g = 1.0's"
    figures = evaluate["ratios"][ratio_key(champion["ratio"])]
    tokens, reference_tokens = figures["mean_cot_tokens"], reference["mean_cot_tokens"]
    drop = champion["accuracy_drop"]
    points = f"{100 * abs(drop):.1f} point" + ("" if f"{100 * abs(drop):.1f}" == "1.0" else "s")
    cost = f"for {points} of accuracy" if drop > 0 else f"and {points} more accuracy"
    low, high = champion["accuracy_drop_ci"]
    return (f"**The committed run ({n_test} test problems): the gate promotes g = {champion['ratio']:g}, "
            f"{1 - tokens / reference_tokens:.0%} fewer CoT tokens {cost}** ({tokens:.0f} instead of "
            f"{reference_tokens:.0f}; accuracy {figures['accuracy']:.3f} against {whose} "
            f"{reference['accuracy']:.3f}, the drop's 95% CI [{low:.3f}, {high:.3f}]).")


def read_reports(reports: Path) -> dict[str, dict[str, Any] | None]:
    """evaluate.json and register.json of ``reports`` (None where missing)."""
    found: dict[str, dict[str, Any] | None] = {}
    for name in REPORTS:
        path = reports / name
        try:
            found[name] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except json.JSONDecodeError as exc:
            raise TokenSkipError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    return found


def committed_reports(repo: Path) -> dict[str, dict[str, Any] | None] | None:
    """The same reports as committed at HEAD, or None outside a git checkout."""
    found: dict[str, dict[str, Any] | None] = {}
    for name in REPORTS:
        shown = subprocess.run(["git", "show", f"HEAD:reports/{name}"], cwd=repo, capture_output=True,
                               text=True, check=False)
        if shown.returncode != 0:
            return None
        found[name] = json.loads(shown.stdout)
    return found


def with_timings_of(evaluate: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, Any]:
    """``evaluate`` with the timing fields of ``reference`` wherever both report the condition."""
    merged = json.loads(json.dumps(evaluate))
    for group in ("ratios", "baselines"):
        for name, figures in (merged.get(group) or {}).items():
            theirs = (reference.get(group) or {}).get(name) or {}
            figures.update({k: theirs[k] for k in TIMING_FIELDS if k in theirs and k in figures})
    return merged


def report_sets(repo: Path) -> list[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]]:
    """(evaluate, register) pairs the README may be drawn from: the working tree's reports, and
    them with the committed run's timings (the committed reports where the working tree has none)."""
    working = read_reports(repo / "reports")
    committed = committed_reports(repo)
    sets = [(working["evaluate.json"], working["register.json"])]
    if committed is not None:
        evaluate, register = working["evaluate.json"], working["register.json"] or committed["register.json"]
        if evaluate is None:
            evaluate = committed["evaluate.json"]
        elif committed["evaluate.json"] is not None:
            evaluate = with_timings_of(evaluate, committed["evaluate.json"])
        sets.append((evaluate, register))
    return sets


def expected_blocks(repo: Path) -> list[dict[str, str]]:
    """Each acceptable README: its blocks by name, drawn from one of report_sets."""
    return [{name: render(evaluate, register) for name, (_, _, render) in BLOCKS.items()}
            for evaluate, register in report_sets(repo)]


def check(repo: Path, readme: Path) -> str | None:
    """None when ``readme``'s blocks are all drawn from one of report_sets, else what differs."""
    text = readme.read_text(encoding="utf-8")
    found = {}
    for name, (begin, end, _) in BLOCKS.items():
        found[name] = block(text, begin, end)
        if found[name] is None:
            return f"{readme}: no {begin} ... {end} markers"
    candidates = expected_blocks(repo)
    if found in candidates:
        return None
    differ = sorted({name for candidate in candidates for name in BLOCKS if candidate[name] != found[name]})
    return (f"{readme}: the {' and '.join(differ)} block differs from reports/ (timings aside); "
            f"run `{COMMAND}`")


def rewrite(repo: Path, readme: Path) -> None:
    """Draw every block of ``readme`` from the working tree's reports."""
    reports = read_reports(repo / "reports")
    text = readme.read_text(encoding="utf-8")
    for begin, end, render in BLOCKS.values():
        body = render(reports["evaluate.json"], reports["register.json"])
        text = replace_block(text, begin, end, body, str(readme))
    readme.write_text(text, encoding="utf-8")


def main(
    check_only: bool = typer.Option(False, "--check", help="Only compare; exit 1 when a block differs"),
    repo: Path = typer.Option(REPO_ROOT, help="Repository root (its reports/ and README.md)"),
) -> None:
    """Rewrite (or only check) README.md's headline and results blocks from the stages' reports."""
    readme = repo / "README.md"
    try:
        problem = check(repo, readme) if check_only else rewrite(repo, readme)
    except (TokenSkipError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if problem:
        typer.echo(problem, err=True)
        raise typer.Exit(1)


BLOCKS = {"headline": (HEADLINE_BEGIN, HEADLINE_END, headline), "results": (BEGIN, END, results_block)}

if __name__ == "__main__":
    typer.run(main)
