"""The README's generated results block: the results table, the gate table and the champion, drawn
from reports/evaluate.json and reports/register.json by tokenskip.register.summary.

    python -m tokenskip.register.readme_blocks           # rewrite README.md's block from reports/
    python -m tokenskip.register.readme_blocks --check   # exit 1 when the block does not match

The check accepts the block drawn from the working tree's reports, or from them with the timings
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
from tokenskip.register.summary import run_summary
from tokenskip.register.tables import TIMING_FIELDS, block, replace_block

REPO_ROOT = Path(__file__).resolve().parents[3]
COMMAND = "python -m tokenskip.register.readme_blocks"
BEGIN, END = f"<!-- results:begin ({COMMAND}) -->", "<!-- results:end -->"
MAIN_BASELINES = ("truncation_0.5", "be_concise")  # the README's rows besides the original
REPORTS = ("evaluate.json", "register.json")


def results_block(evaluate: Mapping[str, Any] | None, register: Mapping[str, Any] | None) -> str:
    """The text between the README's markers. No version numbers: a registry numbers its own."""
    return run_summary(evaluate, register, MAIN_BASELINES, show_version=False)


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


def expected_blocks(repo: Path) -> list[str]:
    """The blocks the README may hold: from the working tree's reports, and from them with the
    committed run's timings (or from the committed reports where the working tree has none)."""
    working = read_reports(repo / "reports")
    committed = committed_reports(repo)
    candidates = [results_block(working["evaluate.json"], working["register.json"])]
    if committed is not None:
        evaluate, register = working["evaluate.json"], working["register.json"] or committed["register.json"]
        if evaluate is None:
            evaluate = committed["evaluate.json"]
        elif committed["evaluate.json"] is not None:
            evaluate = with_timings_of(evaluate, committed["evaluate.json"])
        candidates.append(results_block(evaluate, register))
    return candidates


def check(repo: Path, readme: Path) -> str | None:
    """None when ``readme``'s block is one of expected_blocks, else what differs and what to run."""
    text = readme.read_text(encoding="utf-8")
    found = block(text, BEGIN, END)
    if found is None:
        return f"{readme}: no {BEGIN} ... {END} markers"
    if found in expected_blocks(repo):
        return None
    return f"{readme}: the results block differs from reports/ (timings aside); run `{COMMAND}`"


def main(
    check_only: bool = typer.Option(False, "--check", help="Only compare; exit 1 when the block differs"),
    repo: Path = typer.Option(REPO_ROOT, help="Repository root (its reports/ and README.md)"),
) -> None:
    """Rewrite (or only check) README.md's results block from the stages' reports."""
    readme = repo / "README.md"
    try:
        problem = check(repo, readme) if check_only else None
        if not check_only:
            reports = read_reports(repo / "reports")
            body = results_block(reports["evaluate.json"], reports["register.json"])
            text = replace_block(readme.read_text(encoding="utf-8"), BEGIN, END, body, str(readme))
            readme.write_text(text, encoding="utf-8")
    except (TokenSkipError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if problem:
        typer.echo(problem, err=True)
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
