"""GSM8K-format loading: real files load, every malformed input names file, line and field."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import gsm8k_file, need_data
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.problems import load_problems

GSM8K_TEST_SHA256 = "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14"


def test_real_gsm8k_loads() -> None:
    problems = load_problems(gsm8k_file("test.jsonl"), "gsm8k-test")
    assert len(problems) == 1319
    assert problems[0].id == "gsm8k-test-00000"
    assert problems[0].gold == "18"
    assert "<<" not in problems[0].solution


def test_project_copy_of_gsm8k_is_byte_identical(repo_root: Path) -> None:
    copy = need_data(repo_root / "data" / "gsm8k" / "test.jsonl", "run `make data` to restore data/")
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == GSM8K_TEST_SHA256


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty file"),
        ('{"question": "q", "answer": "#### 1"}\nnot json\n', ":2: not valid JSON"),
        ('{"answer": "#### 1"}\n', ":1: missing field 'question'"),
        ('{"question": "q"}\n', ":1: missing field 'answer'"),
        ('{"question": "q", "answer": "forty two"}\n', "record 1: field 'answer': no '#### '"),
        ('{"question": "", "answer": "#### 1"}\n', "record 1: field 'question' is empty"),
        ("[1, 2]\n", ":1: record is not a JSON object"),
    ],
)
def test_malformed_input_is_named(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(TokenSkipError) as info:
        load_problems(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_cli_reports_bad_params_in_one_line_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text(json.dumps({"data": {"synthetic_train": -5}}))
    result = subprocess.run(
        [sys.executable, "-m", "tokenskip", "synthesize", "--params", str(bad),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "data.synthetic_train: Input should be greater than 0" in result.stderr
    assert not (tmp_path / "out").exists()
