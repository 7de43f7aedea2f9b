"""``tokenskip generate``: the base model's own greedy CoTs on the training questions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from tokenskip.params import GenerateParams, load_params


def checkpoint_path(out: Path) -> Path:
    """The resumable sidecar next to the output file (``.cot.jsonl.checkpoint``)."""
    return out.parent / f".{out.name}.checkpoint"


def _load(gen: GenerateParams, name: str, revision: str | None) -> tuple[Any, Any]:
    """(model, tokenizer) for the transformers backend; (None, tokenizer) for ray and vllm,
    whose engines load the model themselves."""
    import torch

    from tokenskip.modeling import load_causal_lm, load_tokenizer, pick_device

    if gen.backend == "vllm":
        from tokenskip.vllm_generation import require_vllm

        require_vllm()
    if gen.backend != "transformers":
        return None, load_tokenizer(name, revision)
    device = pick_device()
    if device == "cpu":
        torch.set_num_threads(gen.threads)
    return load_causal_lm(name, revision, device)


def _decode(gen: GenerateParams, name: str, revision: str | None, model: Any, tokenizer: Any,
            prompts: list[str], checkpoint: Any) -> tuple[list[Any], float, int, dict[str, Any]]:
    """Decode with generate.backend: generations, seconds, prompts resumed, engine info for the report."""
    from tokenskip.cot_generation import decode_resumable

    if gen.backend == "ray":
        from tokenskip.ray_generation import decode_ray

        generations, seconds, resumed, info = decode_ray(name, revision, prompts, gen, checkpoint)
        info.pop("processes", None)
        return generations, seconds, resumed, info
    if gen.backend == "vllm":
        from tokenskip.vllm_generation import decode_vllm

        return decode_vllm(name, revision, tokenizer, prompts, gen, checkpoint)
    generations, seconds, resumed = decode_resumable(
        model, tokenizer, prompts, gen.batch_size, gen.max_new_tokens, checkpoint
    )
    return generations, seconds, resumed, {}


def generate(
    base: Path = typer.Option(Path("models/base"), help="Base model folder (from base-model)"),
    data: Path = typer.Option(Path("data"), help="Data folder: <dataset>/train.jsonl"),
    out: Path = typer.Option(Path("artifacts/generate/cot.jsonl"), help="cot records (JSON Lines)"),
    report: Path = typer.Option(Path("reports/generate.json"), help="Report (DVC metric)"),
    params: Path = typer.Option(Path("params.yaml"), help="Params file"),
) -> None:
    """Greedy CoTs of the base model; keep correct ones within generate.max_cot_tokens. Resumable.
    generate.backend: transformers (this process), ray (sharded over Ray workers, same output) or vllm."""
    from tokenskip.cot_generation import (
        Checkpoint,
        cot_record,
        generate_report,
        keep_record,
        model_fingerprint,
        run_fingerprint,
    )
    from tokenskip.data import load_problems
    from tokenskip.errors import TokenSkipError
    from tokenskip.io import write_json, write_jsonl
    from tokenskip.modeling import resolve_base_model
    from tokenskip.prompts import build_prompt

    settings = load_params(params)
    gen = settings.generate
    dataset = settings.data.dataset
    problems = load_problems(data / dataset / "train.jsonl", f"{dataset}-train")[: settings.data.n_train]
    name, revision = resolve_base_model(base)
    model, tokenizer = _load(gen, name, revision)
    prompts = [build_prompt(tokenizer, p.question, settings.model.instruction) for p in problems]
    identity = model_fingerprint(name, revision)
    if gen.backend == "vllm":  # other kernels: its outputs may differ, so its checkpoints are its own
        identity["engine"] = "vllm"
    fingerprint = run_fingerprint(identity, prompts, gen.batch_size, gen.max_new_tokens)
    checkpoint = Checkpoint(checkpoint_path(out), fingerprint)
    generations, seconds, resumed, engine = _decode(gen, name, revision, model, tokenizer, prompts,
                                                    checkpoint)
    records = [cot_record(p, g, tokenizer) for p, g in zip(problems, generations, strict=True)]
    kept = [r for r in records if keep_record(r, gen.max_cot_tokens)]
    summary = generate_report(records, kept, generations, seconds)
    if not kept:
        raise TokenSkipError(
            f"{base}: no correct CoT within generate.max_cot_tokens={gen.max_cot_tokens} "
            f"among {len(records)} questions (accuracy {summary['accuracy']})"
        )
    summary["resumed_from_checkpoint"] = resumed
    summary["backend"] = gen.backend
    if engine:
        summary[gen.backend] = engine
    write_jsonl(out, kept)
    write_json(report, summary)
    checkpoint.remove()
    typer.echo(
        f"generate: {summary['n']} questions, accuracy {summary['accuracy']:.3f}, kept {summary['kept']}, "
        f"mean CoT {summary['mean_cot_tokens']} tokens, {summary['tokens_per_s']} tok/s -> {out}"
    )
