"""Bad input is one line and exit code 2, from the real ``tokenskip`` entry point: a params file
that is not UTF-8 or gives a key twice, an empty MLflow setting, a number or list where text is
expected (reported as that type, not as "empty"), data files outside data/, an HTTP server at
MLFLOW_TRACKING_URI that is not MLflow, a database URI whose driver is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.pipeline.flow_helpers import free_port
from tests.pipeline.mlflow_fixtures import write_workspace
from tests.unit.test_exit_codes import tokenskip
from tokenskip.core.errors import ExitCode, TokenSkipError, exit_code_of
from tokenskip.core.params import load_params, parse_params
from tokenskip.core.problems import load_problems
from tokenskip.tracking.retries import Retry
from tokenskip.tracking.store import connect


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single ``error:`` line of a run that exited 2 (and printed no traceback)."""
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"mlflow:\n  experiment: a\nflow:\n  retries: 1\nmlflow:\n  experiment: b\n",
         "error: params.yaml:5: duplicate key 'mlflow' (first on line 1)"),
        (b"gates:\n  max_accuracy_drop: 0.05\n  max_accuracy_drop: 0.5\n",
         "error: params.yaml:3: duplicate key 'max_accuracy_drop' (first on line 2)"),
        (b"mlflow:\n  experiment: caf\xe9\n", "error: params.yaml:2: not valid UTF-8 (byte 18 of the line is 0xe9)"),
        (b"mlflow:\n  experiment: ''\n", "error: params.yaml: mlflow.experiment: Value error, must not be empty"),
        (b"mlflow:\n  tracking_uri: ' '\n", "error: params.yaml: mlflow.tracking_uri: Value error, must not be empty"),
        (b"mlflow:\n  experiment: 5\n", "error: params.yaml: mlflow.experiment: Input should be a valid string (got 5)"),
        (b"mlflow:\n  tracking_uri: [a]\n",
         "error: params.yaml: mlflow.tracking_uri: Input should be a valid string (got ['a'])"),
        (b"data:\n  test_path: /srv/elsewhere/test.jsonl\n",
         "error: params.yaml: data.test_path: Value error, must be a file under data/ (DVC tracks data/ only)"),
        (b"data:\n  train_path: data/../train.jsonl\n", "error: params.yaml: data.train_path: Value error, must be a"),
        (b"x: [\n", "error: params.yaml:2: not valid YAML (expected the node content, but found '<stream end>')"),
    ],
)
def test_a_bad_params_file_is_one_line_and_exit_2(tmp_path: Path, text: bytes, expected: str) -> None:
    (tmp_path / "params.yaml").write_bytes(text)
    assert one_error_line(tokenskip(["register", "--params", "params.yaml"], tmp_path)).startswith(expected)


def test_params_under_data_and_numbers_in_records_are_named_by_type(tmp_path: Path) -> None:
    assert parse_params({"data": {"test_path": "data/mine/test.jsonl"}}).data.test_path == "data/mine/test.jsonl"
    path = tmp_path / "test.jsonl"
    for value, kind in ((5, "int"), (["What is 1+1?"], "list")):
        path.write_text(json.dumps({"question": value, "answer": "1 + 1 = 2\n#### 2"}) + "\n")
        with pytest.raises(TokenSkipError) as info:
            load_problems(path)
        assert str(info.value) == f"{path}: record 1: field 'question' is not text (got {kind})"


def test_load_params_refuses_a_duplicate_key_the_old_loader_kept(tmp_path: Path) -> None:
    source = tmp_path / "p.yaml"
    source.write_text("gates:\n  max_accuracy_drop: 0.05\ngates:\n  max_accuracy_drop: 0.9\n")
    with pytest.raises(TokenSkipError, match=r"p.yaml:3: duplicate key 'gates' \(first on line 1\)"):
        load_params(source)


@pytest.fixture()
def not_mlflow() -> Iterator[str]:
    """A plain HTTP file server (python -m http.server): it answers, but not as MLflow does."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(uri, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield uri
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_an_http_server_that_is_not_mlflow_is_one_line(not_mlflow: str, tmp_path: Path) -> None:
    with pytest.raises(TokenSkipError) as info:
        connect(not_mlflow, "e", str(tmp_path / "artifacts"), Retry(2, 0.1))
    assert str(info.value).startswith(f"{not_mlflow} is not an MLflow tracking server: its answer to get experiment")
    assert exit_code_of(info.value) == ExitCode.BAD_INPUT and "\n" not in str(info.value)


def test_register_against_a_server_that_is_not_mlflow_exits_2(
    not_mlflow: str, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """It used to end in an 81-line traceback (exit 1)."""
    write_workspace(tmp_path, tiny_model_dir)
    line = one_error_line(tokenskip(["register"], tmp_path, {"MLFLOW_TRACKING_URI": not_mlflow}))
    assert line.startswith(f"error: {not_mlflow} is not an MLflow tracking server")


@pytest.mark.parametrize("uri", ["postgresql+psycopg://u:p@127.0.0.1:1/mlflow", "postgresql://u:p@127.0.0.1:1/m"])
def test_a_database_uri_without_its_driver_is_one_line(tmp_path: Path, uri: str) -> None:
    """psycopg (3) is not installed; psycopg2, the default driver of postgresql://, is hidden."""
    probe = ("import sys; sys.modules['psycopg2'] = None\n"
             "from tokenskip.tracking.store import connect; from tokenskip.tracking.retries import Retry\n"
             "from tokenskip.core.errors import TokenSkipError, exit_code_of\n"
             f"try:\n    connect({uri!r}, 'e', 'artifacts', Retry(2, 0.1))\n"
             "except TokenSkipError as exc:\n    print(exit_code_of(exc), exc)\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    code, _, message = done.stdout.strip().partition(" ")
    assert code == "2", done.stdout + done.stderr[-2000:]
    assert message.startswith(f"MLflow tracking store {uri}: open the store failed: its driver (Python module ")
    assert "is not installed" in message and "\n" not in message


def test_params_files_outside_data_are_refused_by_the_stages(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"train_path": str(tmp_path / "x.jsonl")}}))
    line = one_error_line(tokenskip(["generate", "--params", "params.yaml"], tmp_path))
    assert line.startswith("error: params.yaml: data.train_path: Value error, must be a file under data/")
