"""The README's results and gate tables are the committed reports' figures, regenerated."""

from pathlib import Path

from tokenskip_flows.readme import BEGIN, END, render, results_section


def test_readme_results_block_matches_the_committed_reports(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    assert BEGIN in readme and END in readme
    assert render(readme, results_section(repo_root / "reports")) == readme, (
        "README results differ from reports/: run `.venv/bin/python -m tokenskip_flows.readme`")


def test_readme_champion_line_never_passes_off_an_earlier_runs_alias(repo_root: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from tokenskip_flows.reports import champion_line, champion_of

    shutil.copy(repo_root / "reports" / "evaluate.json", tmp_path / "evaluate.json")
    register = json.loads((repo_root / "reports" / "register.json").read_text(encoding="utf-8"))

    def last_line(champion: dict) -> str:
        (tmp_path / "register.json").write_text(json.dumps({**register, "champion": champion}), encoding="utf-8")
        return results_section(tmp_path).splitlines()[-1]

    model = register["registered_model"]
    assert last_line({"version": "7", "ratio": 0.6}) == f"Champion: {model} version 7 (ratio 0.6)."
    kept = last_line({"version": "7", "ratio": 0.6, "from_this_run": False})
    assert kept.startswith("Champion: none from this run") and f"{model} version 7 (ratio 0.6)" in kept
    assert kept == champion_line(champion_of({**register, "champion": {"version": 7, "ratio": 0.6,
                                                                        "from_this_run": False}})) + "."
