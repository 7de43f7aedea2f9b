"""The README's results and gate tables are the committed reports' figures, regenerated."""

from pathlib import Path

from flows.readme import BEGIN, END, render, results_section


def test_readme_results_block_matches_the_committed_reports(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    assert BEGIN in readme and END in readme
    assert render(readme, results_section(repo_root / "reports")) == readme, (
        "README results differ from reports/: run `.venv/bin/python -m flows.readme`")
