"""Bad model folders and over-long prompts on the tiny model: one TokenSkipError line naming the
folder or the record, and through the CLI one ``error:`` line, exit code 1 and no output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tokenskip.cli import app
from tokenskip.core.decoding import generate_greedy, solve_problems
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.hf import load_causal_lm, load_tokenizer
from tokenskip.core.params import DEFAULT_INSTRUCTION
from tokenskip.core.problems import Problem, split_gold
from tokenskip.core.prompts import build_prompt
from tokenskip.data.synthetic import generate_problems

TEN_MB_QUESTION = ("Tom has 3 apples and buys 12 more. " * 300_000)[:10_000_000]
LONG_QUESTION = "Tom has 3 apples and buys 12 more. " * 120  # 2520 tokens > the tiny context of 2048


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> tuple[Any, Any]:
    return load_causal_lm(str(tiny_model_dir), device="cpu")


def _copy(model_dir: Path, folder: Path, *, strip_tokenizer: bool = False, weights_bytes: int | None = None) -> Path:
    """A copy of the model folder without its tokenizer files, or with its weights truncated."""
    shutil.copytree(model_dir, folder)
    if strip_tokenizer:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (folder / name).unlink()
    if weights_bytes is not None:
        with (folder / "model.safetensors").open("r+b") as handle:
            handle.truncate(weights_bytes)
    return folder


def _rows(n: int, long_at: int | None = None, question: str = LONG_QUESTION) -> list[dict[str, Any]]:
    rows = [{"question": r["question"], "answer": r["answer"]} for r in generate_problems(5, n)]
    if long_at is not None:
        rows[long_at]["question"] = question
    return rows


def _cot_file(path: Path, n: int = 4) -> Path:
    lines = []
    for i, row in enumerate(_rows(n)):
        cot, gold = split_gold(row["answer"])
        lines.append(json.dumps({"id": f"s-{i}", "question": row["question"], "gold": gold, "output": cot,
                                 "cot": cot, "prediction": gold, "correct": True, "cot_tokens": 1}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "CI": "true"}
    return subprocess.run([sys.executable, "-m", "tokenskip", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single ``error:`` line of a failed run (exit code 2, no traceback)."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def _prune(tmp_path: Path, base: Path) -> subprocess.CompletedProcess:
    (tmp_path / "p.yaml").write_text("")
    return _cli(tmp_path, "prune", "--base", str(base), "--cot", str(_cot_file(tmp_path / "cot.jsonl")),
                "--out", str(tmp_path / "prune"), "--report", str(tmp_path / "prune.json"),
                "--params", str(tmp_path / "p.yaml"))


def test_tokenizer_without_its_files_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_dir, tmp_path / "model", strip_tokenizer=True)
    with pytest.raises(TokenSkipError) as caught:
        load_tokenizer(str(folder))
    assert str(caught.value).startswith(f"{folder}: tokenizer is empty")
    assert "\n" not in str(caught.value)


def test_prune_refuses_a_model_without_tokenizer_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_dir, tmp_path / "model", strip_tokenizer=True)
    error = _one_error_line(_prune(tmp_path, folder))
    assert error.startswith(f"error: {folder}: tokenizer is empty")
    assert not (tmp_path / "prune").exists() and not (tmp_path / "prune.json").exists()


@pytest.mark.parametrize("size", [100, 0, 100_000], ids=["100-bytes", "empty", "header-only"])
def test_truncated_weights_are_refused(tiny_model_dir: Path, tmp_path: Path, size: int) -> None:
    folder = _copy(tiny_model_dir, tmp_path / "model", weights_bytes=size)
    with pytest.raises(TokenSkipError) as caught:
        load_causal_lm(str(folder), device="cpu")
    message = str(caught.value)
    assert message.startswith(f"{folder}: cannot load a causal LM: its weights file is truncated or corrupt (")
    assert "\n" not in message


def test_prune_refuses_truncated_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_dir, tmp_path / "model", weights_bytes=100)
    error = _one_error_line(_prune(tmp_path, folder))
    assert error.startswith(f"error: {folder}: cannot load a causal LM: its weights file is truncated")
    assert not (tmp_path / "prune").exists() and not (tmp_path / "prune.json").exists()


def test_prompt_longer_than_the_context_is_refused_before_decoding(tiny, monkeypatch) -> None:
    model, tokenizer = tiny
    assert model.config.max_position_embeddings == 2048
    prompts = [build_prompt(tokenizer, q, DEFAULT_INSTRUCTION) for q in ("What is 2 + 3?", LONG_QUESTION)]
    monkeypatch.setattr(model, "generate", lambda **_: pytest.fail("decoded an over-long prompt"))
    with pytest.raises(TokenSkipError) as caught:
        generate_greedy(model, tokenizer, prompts, 2, 4)
    assert str(caught.value) == (
        f"record 2 of 2: the prompt ({len(prompts[1])} characters) is longer than the model's context of "
        "2048 tokens; shorten the question"
    )


class RecordingTokenizer:
    """The tiny tokenizer, recording the longest text it was asked to encode."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer, self.longest = tokenizer, 0

    def __call__(self, text: Any, **kwargs: Any) -> Any:
        self.longest = max([self.longest, *(len(t) for t in ([text] if isinstance(text, str) else text))])
        return self.tokenizer(text, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)


def test_ten_megabyte_question_is_refused_without_tokenizing_it(tiny) -> None:
    model, tokenizer = tiny
    problems = [Problem(f"t-{i}", q, "1") for i, q in enumerate(("What is 2 + 3?", TEN_MB_QUESTION))]
    prompts = [build_prompt(tokenizer, p.question, DEFAULT_INSTRUCTION) for p in problems]
    recording = RecordingTokenizer(tokenizer)
    with pytest.raises(TokenSkipError, match=r"^record 2 \(id 't-1'\): field 'question': the prompt \(10000"):
        solve_problems(model, recording, problems, prompts, 2, 4, desc="test")
    assert recording.longest < 1_000


def test_generate_cli_refuses_a_ten_megabyte_question(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data" / "synthetic"
    data.mkdir(parents=True)
    rows = _rows(3, long_at=1, question=TEN_MB_QUESTION)
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "p.yaml").write_text("generate: {backend: transformers, batch_size: 2, max_new_tokens: 4}\n")
    result = _cli(tmp_path, "generate", "--base", str(tiny_model_dir), "--data", str(tmp_path / "data"),
                  "--out", str(tmp_path / "cot.jsonl"), "--report", str(tmp_path / "generate.json"),
                  "--params", str(tmp_path / "p.yaml"))
    assert _one_error_line(result).startswith("error: record 2 of 3: the prompt (10000")
    assert not (tmp_path / "cot.jsonl").exists() and not (tmp_path / "generate.json").exists()


def test_evaluate_names_the_test_file_of_an_over_long_question(tiny_model_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_model_dir, tmp_path / "tokenskip" / "model")
    test_file = tmp_path / "data" / "synthetic" / "test.jsonl"
    test_file.parent.mkdir(parents=True)
    test_file.write_text("".join(json.dumps(r) + "\n" for r in _rows(3, long_at=2)), encoding="utf-8")
    (tmp_path / "p.yaml").write_text("")
    result = CliRunner().invoke(app, [
        "evaluate", "--base", str(tiny_model_dir), "--model", str(tmp_path / "tokenskip"),
        "--data", str(tmp_path / "data"), "--report", str(tmp_path / "evaluate.json"),
        "--pareto", str(tmp_path / "pareto.csv"), "--plot", str(tmp_path / "pareto.png"),
        "--outputs", str(tmp_path / "outputs.jsonl"), "--per-question", str(tmp_path / "per_question.jsonl"),
        "--params", str(tmp_path / "p.yaml"),
    ])
    assert isinstance(result.exception, TokenSkipError), result.output
    assert str(result.exception).startswith(
        f"{test_file}: record 3 (id 'synthetic-test-00002'): field 'question': the prompt ("
    )
    assert not (tmp_path / "evaluate.json").exists()


def test_ray_engine_refuses_an_over_long_prompt_before_starting_workers(tiny_model_dir: Path, tmp_path: Path,
                                                                        monkeypatch) -> None:
    from tokenskip.core.params import GenerateParams
    from tokenskip.generate import engines
    from tokenskip.generate.checkpoint import Checkpoint

    monkeypatch.setattr(engines, "decode_ray", lambda *_: pytest.fail("started Ray workers"))
    engine = engines.RayEngine(str(tiny_model_dir), None, GenerateParams(backend="ray"), repetition_penalty=1.0)
    prompts = [build_prompt(engine.tokenizer, q, DEFAULT_INSTRUCTION) for q in ("What is 2 + 3?", LONG_QUESTION)]
    with pytest.raises(TokenSkipError, match=r"^record 2 of 2: the prompt \(\d+ characters\) is longer than the "
                                             r"model's context of 2048 tokens"):
        engine.decode(prompts, Checkpoint(tmp_path / "cot.jsonl.checkpoint", {}))
