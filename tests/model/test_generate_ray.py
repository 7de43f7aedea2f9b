"""generate.backend=ray: a local 2-CPU Ray cluster gives the same cot records as the transformers
backend, resumes its checkpoints, and survives a worker killed mid-shard."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tokenskip.cli import app
from tokenskip.core.answers import extract_prediction
from tokenskip.core.decoding import Generation, generate_greedy
from tokenskip.core.hf import load_causal_lm
from tokenskip.core.io import write_jsonl
from tokenskip.core.params import DEFAULT_INSTRUCTION, GenerateParams
from tokenskip.core.problems import Problem, split_gold
from tokenskip.core.prompts import build_prompt
from tokenskip.core.records import cot_record
from tokenskip.data.synthetic import generate_problems
from tokenskip.generate.checkpoint import Checkpoint, run_fingerprint
from tokenskip.generate.engines import decode_transformers
from tokenskip.generate.ray_engine import KILL_MARKER_ENV, KILL_SHARD_ENV, decode_ray, plan_shards

N, BATCH, SHARD, MAX_NEW = 14, 2, 4, 16  # 4 shards of 2 batches (the last one: 1 batch)
GEN = GenerateParams(batch_size=BATCH, shard_size=SHARD, max_new_tokens=MAX_NEW, backend="ray",
                     ray_workers=2, threads=1)


class Killed(Exception):
    """Stands in for a kill of the single-process run right after a batch was checkpointed."""


@pytest.fixture(scope="module")
def random_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's tokenizer with seeded random weights (std 0.5): every prompt gets its own
    output, so a shard reassembled in the wrong place shows."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = tmp_path_factory.mktemp("random_model")
    shutil.copytree(tiny_model_dir, out, dirs_exist_ok=True)
    config = AutoConfig.from_pretrained(out)
    config.initializer_range = 0.5
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny(random_model_dir: Path):
    import torch

    torch.set_num_threads(1)
    return load_causal_lm(str(random_model_dir), device="cpu")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One local Ray cluster (2 CPUs, no dashboard, 100 MB object store) for the whole module."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2,
             log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _problems(n: int = N) -> list[Problem]:
    rows = list(generate_problems(11, n))
    return [Problem(f"t-{i}", r["question"], split_gold(r["answer"])[1]) for i, r in enumerate(rows)]


def _prompts(tokenizer, problems: list[Problem]) -> list[str]:
    return [build_prompt(tokenizer, p.question, DEFAULT_INSTRUCTION) for p in problems]


def _records_bytes(path: Path, problems: list[Problem], generations: list[Generation], tokenizer) -> bytes:
    write_jsonl(path, [cot_record(p, g.text, tokenizer) for p, g in zip(problems, generations, strict=True)])
    return path.read_bytes()


def test_shards_are_whole_batches_of_the_single_process_run(tiny) -> None:
    model, tokenizer = tiny
    prompts = _prompts(tokenizer, _problems())
    batches: list[list[int]] = []
    generate_greedy(model, tokenizer, prompts, BATCH, 1, on_batch=lambda indices, _: batches.append(indices))
    for shard_size, batches_per_shard in ((SHARD, 2), (5, 2), (1, 1), (100, len(batches))):
        shards = plan_shards(prompts, BATCH, shard_size)
        expected = [sum(batches[k : k + batches_per_shard], []) for k in range(0, len(batches), batches_per_shard)]
        assert [s.indices for s in shards] == expected
        assert [s.number for s in shards] == list(range(len(expected)))


@pytest.mark.slow
def test_cli_ray_backend_writes_the_same_cot_file(ray_cluster, random_model_dir: Path, tiny, tmp_path: Path) -> None:
    _, tokenizer = tiny
    problems = _problems()
    reference, _ = generate_greedy(tiny[0], tokenizer, _prompts(tokenizer, problems), BATCH, MAX_NEW)
    # gold = the random model's own (last-number) prediction where it has one: those records are kept
    rows = [{"question": p.question, "answer": f"#### {extract_prediction(g.text) or 0}"}
            for p, g in zip(problems, reference, strict=True)]
    (tmp_path / "data" / "synthetic").mkdir(parents=True)
    write_jsonl(tmp_path / "data" / "synthetic" / "train.jsonl", rows)
    outputs = {}
    for backend in ("transformers", "ray"):
        params = tmp_path / f"{backend}.yaml"
        params.write_text(json.dumps({"data": {"n_train": N}, "generate": {
            "batch_size": BATCH, "shard_size": SHARD, "max_new_tokens": MAX_NEW, "max_cot_tokens": 250,
            "backend": backend, "ray_workers": 2, "threads": 1}}))
        out, report = tmp_path / backend / "cot.jsonl", tmp_path / backend / "generate.json"
        result = CliRunner().invoke(app, ["generate", "--base", str(random_model_dir), "--data", str(tmp_path / "data"),
                                          "--out", str(out), "--report", str(report), "--params", str(params)])
        assert result.exit_code == 0, result.output + repr(result.exception)
        outputs[backend] = (out.read_bytes(), json.loads(report.read_text()))
    (cot_tf, report_tf), (cot_ray, report_ray) = outputs["transformers"], outputs["ray"]
    assert cot_ray == cot_tf and report_ray["kept"] >= 3
    assert len({json.loads(line)["output"] for line in cot_ray.splitlines()}) == report_ray["kept"]
    for key in ("n", "accuracy", "kept", "mean_cot_tokens", "new_tokens"):
        assert report_ray[key] == report_tf[key]
    assert report_ray["backend"] == "ray" and report_ray["ray"]["workers"] == 2
    assert report_ray["ray"]["shards"] == 4 and report_ray["ray"]["threads_per_worker"] == [1]
    assert not (tmp_path / "ray" / ".cot.jsonl.checkpoint").exists()


@pytest.mark.slow
def test_ray_resumes_a_checkpoint_and_retries_a_worker_killed_mid_shard(
    ray_cluster, random_model_dir: Path, tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tokenizer = tiny
    problems = _problems()
    prompts = _prompts(tokenizer, problems)
    fingerprint = run_fingerprint({"name": "random"}, prompts, BATCH, MAX_NEW)
    full, _, _, _ = decode_transformers(model, tokenizer, prompts, BATCH, MAX_NEW, Checkpoint(tmp_path / "a", fingerprint))
    calls = []

    def stop_after_two_batches(indices: list[int]) -> None:
        calls.append(indices)
        if len(calls) == 2:
            raise Killed

    with pytest.raises(Killed):  # the single-process run checkpoints shard 0's two batches, then dies
        decode_transformers(model, tokenizer, prompts, BATCH, MAX_NEW, Checkpoint(tmp_path / "b", fingerprint),
                         on_batch=stop_after_two_batches)
    marker = tmp_path / "killed.pid"
    monkeypatch.setenv(KILL_SHARD_ENV, "1")  # the worker SIGKILLs itself after shard 1's first batch, once
    monkeypatch.setenv(KILL_MARKER_ENV, str(marker))
    resumed, _, from_checkpoint, info = decode_ray(str(random_model_dir), None, prompts, GEN,
                                                   Checkpoint(tmp_path / "b", fingerprint))

    assert from_checkpoint == 2 * BATCH and info["shards_resumed"] == 1
    killed_pid, processes = int(marker.read_text()), info["processes"]
    assert killed_pid in {r["pid"] for r in processes["replicas"]}  # a model replica really died mid-shard
    assert sorted(processes["finished_by_pid"]) == [1, 2, 3]
    assert processes["finished_by_pid"][1] != killed_pid  # its shard was finished by the restarted actor
    assert (_records_bytes(tmp_path / "ray.jsonl", problems, resumed, tokenizer)
            == _records_bytes(tmp_path / "tf.jsonl", problems, full, tokenizer))
    entries = [json.loads(line) for line in (tmp_path / "b").read_text().splitlines()[1:]]
    assert sorted(i for e in entries for i, _, _ in e["batch"]) == list(range(N))  # each prompt once
