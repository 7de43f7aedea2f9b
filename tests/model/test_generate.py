"""generate: resumable batched decoding gives the same records as an uninterrupted run."""

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tokenskip.cli import app
from tokenskip.core.decoding import Generation
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.hf import load_causal_lm
from tokenskip.core.io import write_jsonl
from tokenskip.core.params import DEFAULT_INSTRUCTION
from tokenskip.core.problems import Problem, split_gold
from tokenskip.core.prompts import build_prompt
from tokenskip.core.records import cot_record
from tokenskip.data.synthetic import generate_problems
from tokenskip.generate.checkpoint import Checkpoint, model_fingerprint, run_fingerprint
from tokenskip.generate.engines import decode_transformers


class Killed(Exception):
    """Stands in for a kill right after a batch was checkpointed."""


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    return load_causal_lm(str(tiny_model_dir), device="cpu")


def _problems(n: int) -> list[Problem]:
    rows = list(generate_problems(7, n))
    return [Problem(f"t-{i}", r["question"], split_gold(r["answer"])[1]) for i, r in enumerate(rows)]


def test_resume_after_kill_writes_identical_records(tiny, tmp_path: Path) -> None:
    model, tokenizer = tiny
    problems = _problems(6)
    prompts = [build_prompt(tokenizer, p.question, DEFAULT_INSTRUCTION) for p in problems]
    fingerprint = run_fingerprint({"name": "tiny"}, prompts, 2, 12)

    full, _, _, _ = decode_transformers(model, tokenizer, prompts, 2, 12, Checkpoint(tmp_path / "a.ckpt", fingerprint))

    def kill_after_first(indices: list[int]) -> None:
        raise Killed

    with pytest.raises(Killed):
        decode_transformers(model, tokenizer, prompts, 2, 12, Checkpoint(tmp_path / "b.ckpt", fingerprint),
                         on_batch=kill_after_first)
    resumed_checkpoint = Checkpoint(tmp_path / "b.ckpt", fingerprint)
    assert len(resumed_checkpoint.done) == 2
    decoded_batches: list[list[int]] = []
    resumed, _, from_checkpoint, _ = decode_transformers(model, tokenizer, prompts, 2, 12, resumed_checkpoint,
                                                   on_batch=decoded_batches.append)
    assert from_checkpoint == 2 and len(decoded_batches) == 2  # only the 2 unfinished batches ran again

    for name, generations in (("full.jsonl", full), ("resumed.jsonl", resumed)):
        write_jsonl(tmp_path / name, [cot_record(p, g.text, tokenizer) for p, g in zip(problems, generations, strict=True)])
    assert (tmp_path / "full.jsonl").read_bytes() == (tmp_path / "resumed.jsonl").read_bytes()


def test_checkpoint_of_other_settings_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt"
    first = Checkpoint(path, "aaa")
    first.start()
    first.append([0], [Generation("x", 1)], 1.0)
    assert len(Checkpoint(path, "aaa").done) == 1
    assert Checkpoint(path, "bbb").done == {}


def _same_size_other_weights(model_dir: Path) -> None:
    """Rewrite the weights in place with other values: same file size and mtime, different bytes."""
    from safetensors.torch import load_file, save_file

    weights = model_dir / "model.safetensors"
    before, old_bytes = weights.stat(), weights.read_bytes()
    save_file({k: v * 1.01 for k, v in load_file(str(weights)).items()}, str(weights), metadata={"format": "pt"})
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (weights.stat().st_size, weights.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert weights.read_bytes() != old_bytes


def test_checkpoint_of_a_replaced_model_at_the_same_path_is_not_reused(tiny_model_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    prompts = ["a", "b"]

    def checkpoint() -> Checkpoint:
        identity = model_fingerprint(str(model_dir), None)
        return Checkpoint(tmp_path / "cot.ckpt", run_fingerprint(identity, prompts, 2, 12))

    def decode_one_batch() -> None:
        started = checkpoint()
        started.start()
        started.append([0, 1], [Generation("x", 1), Generation("y", 1)], 1.0)
        assert len(checkpoint().done) == 2

    decode_one_batch()
    _same_size_other_weights(model_dir)  # another model, same path, same sizes, same mtimes
    assert checkpoint().done == {}
    decode_one_batch()
    for path in model_dir.iterdir():  # touched, same bytes: still the same model, the batch is reused
        os.utime(path, ns=(10**18, 10**18))
    assert len(checkpoint().done) == 2


def _write_data(folder: Path, n: int) -> None:
    rows = list(generate_problems(3, n))
    (folder / "synthetic").mkdir(parents=True)
    (folder / "synthetic" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _params(path: Path) -> Path:
    path.write_text("data: {n_train: 4}\n"
                    "generate: {backend: transformers, batch_size: 2, max_new_tokens: 8, max_cot_tokens: 250}\n")
    return path


def test_generate_without_a_kept_cot_fails_without_output(tiny_model_dir: Path, tmp_path: Path) -> None:
    _write_data(tmp_path / "data", 4)
    out, report = tmp_path / "gen" / "cot.jsonl", tmp_path / "generate.json"
    result = CliRunner().invoke(app, ["generate", "--base", str(tiny_model_dir), "--data", str(tmp_path / "data"),
                                      "--out", str(out), "--report", str(report),
                                      "--params", str(_params(tmp_path / "p.yaml"))])
    # 8 new tokens cannot reach a final answer: nothing is kept, which is an error, not an empty file
    assert isinstance(result.exception, TokenSkipError)
    assert "no correct CoT within generate.max_cot_tokens" in str(result.exception)
    assert not out.exists() and not report.exists()


def test_tokenizer_without_chat_template_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    (model_dir / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (model_dir / "tokenizer_config.json").write_text(json.dumps(config))
    _write_data(tmp_path / "data", 4)
    out = tmp_path / "gen" / "cot.jsonl"
    result = CliRunner().invoke(app, ["generate", "--base", str(model_dir), "--data", str(tmp_path / "data"),
                                      "--out", str(out), "--report", str(tmp_path / "g.json"),
                                      "--params", str(_params(tmp_path / "p.yaml"))])
    assert isinstance(result.exception, TokenSkipError)
    assert "no chat_template" in str(result.exception)
    assert not out.parent.exists()
