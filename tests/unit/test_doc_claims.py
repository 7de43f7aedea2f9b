"""Claims that cannot go stale: README.md, docs/*.md and params.yaml's comments name only modules,
paths, commands, options, params keys and headings that exist, and say what the committed register
report says about the champion. Each check is shown to catch a stale name planted in a copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.unit.doc_claims import problems


def register_report(repo_root: Path) -> dict:
    return json.loads((repo_root / "reports" / "register.json").read_text(encoding="utf-8"))


def test_the_docs_name_only_what_exists_and_agree_with_the_reports(repo_root: Path) -> None:
    assert problems(repo_root, repo_root, register_report(repo_root)) == []


@pytest.fixture
def copy(repo_root: Path, tmp_path: Path) -> Path:
    """README.md, docs/ and params.yaml in a temporary folder."""
    shutil.copy(repo_root / "README.md", tmp_path / "README.md")
    shutil.copy(repo_root / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(repo_root / "docs", tmp_path / "docs")
    return tmp_path


PLANTS = [
    ("README.md", "Scores live in `tokenskip.prune.gone`.", "module tokenskip.prune.gone: no tokenskip.prune.gone"),
    ("README.md", "See `tokenskip.core.errors.NoSuchError`.",
     "module tokenskip.core.errors.NoSuchError: tokenskip.core.errors defines no NoSuchError"),
    ("docs/records.md", "Written by src/tokenskip/prune/old_writer.py.",
     "path src/tokenskip/prune/old_writer.py: not in the repository"),
    ("docs/experiments.md", "The flow is flows/old_flow.py.", "path flows/old_flow.py: not in the repository"),
    ("docs/promises.md", "Checked by `tests/unit/test_gate.py::test_no_such_test`.",
     "test tests/unit/test_gate.py::test_no_such_test: no such test"),
    ("README.md", "Run `tokenskip frobnicate` first.", "command tokenskip frobnicate: no such command"),
    ("README.md", "Run `tokenskip register --no-such-flag`.",
     "option tokenskip register --no-such-flag: no such option"),
    ("params.yaml", "# see finetune.no_such_key", "param finetune.no_such_key: not a key of params.yaml"),
    ("docs/params.md", "Set `gates.max_drop`.", "param gates.max_drop: not a key of params.yaml"),
    ("README.md", "See [the old section](#the-old-section).",
     "link #the-old-section: no heading #the-old-section in README.md"),
    ("params.yaml", "# explained in (README: The old section)", "README section 'The old section': no such heading"),
    ("README.md", "See [gone](docs/gone.md).", ("link docs/gone.md: no docs/gone.md",
                                                "path docs/gone.md: not in the repository")),
]


@pytest.mark.parametrize(("doc", "line", "expected"), PLANTS, ids=[str(p[2]).split(":")[0] for p in PLANTS])
def test_a_planted_stale_name_is_caught(copy: Path, repo_root: Path, doc: str, line: str,
                                        expected: str | tuple[str, ...]) -> None:
    before = set(problems(copy, repo_root, register_report(repo_root)))
    path = copy / doc
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    wanted = {f"{doc}: {e}" for e in ((expected,) if isinstance(expected, str) else expected)}
    assert set(problems(copy, repo_root, register_report(repo_root))) - before == wanted


CLAIMS = [
    "The embedded default promotes nothing, so `@champion` does not exist after a first `make run`.",
    "The gate promotes g = 0.5: half the tokens.",
    "g = 0.8 saves the most tokens of the ratios that pass, so it is the `champion`.",
]


@pytest.mark.parametrize("claim", CLAIMS)
def test_a_planted_claim_against_the_reports_is_caught(copy: Path, repo_root: Path, claim: str) -> None:
    before = set(problems(copy, repo_root, register_report(repo_root)))
    readme = copy / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + f"\n{claim}\n", encoding="utf-8")
    found = sorted(set(problems(copy, repo_root, register_report(repo_root))) - before)
    assert len(found) == 1 and found[0].startswith("README.md: claim ") and claim[:30] in found[0]


def test_claims_follow_the_report_not_the_text(copy: Path, repo_root: Path) -> None:
    """The same docs against a report without a champion: every claim of one is flagged."""
    report = register_report(repo_root)
    nobody = {**report, "champion": None, "versions": [{**v, "alias": None} for v in report["versions"]]}
    claims = [f for f in problems(copy, repo_root, nobody) if ": claim " in f]
    assert claims and all("promoted nothing" in f or "is None" in f for f in claims)
    assert any(f.startswith("README.md: claim ") for f in claims)
