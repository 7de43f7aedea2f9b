"""The README's results and gate tables are the committed reports' figures, regenerated."""

from pathlib import Path

from flows.readme import BEGIN, END, render, results_section


def test_readme_results_block_matches_the_committed_reports(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    assert BEGIN in readme and END in readme
    assert render(readme, results_section(repo_root / "reports")) == readme, (
        "README results differ from reports/: run `.venv/bin/python -m flows.readme`")


def test_a_champion_kept_from_an_earlier_run_is_not_shown_as_this_runs() -> None:
    from flows.readme import champion_line

    assert champion_line({"version": "7", "ratio": 0.6, "from_this_run": True}) == "Champion: version 7 (g=0.6)."
    kept = champion_line({"version": "7", "ratio": 0.6, "from_this_run": False})
    assert kept.startswith("Champion: none from this run") and "version 7 (g=0.6)" in kept
    assert champion_line(None).startswith("Champion: none.")
