"""``tokenskip generate``: the base model's own greedy CoTs on the training questions."""

from __future__ import annotations

from pathlib import Path

import typer

from tokenskip.core.params import load_params


def generate(
    base: Path = typer.Option(Path("models/base"), help="Base model folder (from base-model)"),
    data: Path = typer.Option(Path("data"), help="Data folder: <dataset>/train.jsonl (or data.train_path)"),
    out: Path = typer.Option(Path("artifacts/generate/cot.jsonl"), help="cot records (JSON Lines)"),
    report: Path = typer.Option(Path("reports/generate.json"), help="Report (DVC metric)"),
    params: Path = typer.Option(Path("params.yaml"), help="Params file"),
) -> None:
    """Greedy CoTs of the base model; keep correct ones within generate.max_cot_tokens. Resumable.
    generate.backend: transformers (this process), ray (sharded over Ray workers, same output) or vllm."""
    from tokenskip.core.decoding import greedy_settings, resolve_repetition_penalty
    from tokenskip.core.errors import TokenSkipError
    from tokenskip.core.hf import load_generation_config, resolve_base_model
    from tokenskip.core.io import write_json, write_jsonl
    from tokenskip.core.problems import load_dataset
    from tokenskip.core.prompts import build_prompt
    from tokenskip.core.records import cot_record
    from tokenskip.generate.checkpoint import Checkpoint, checkpoint_path, run_fingerprint
    from tokenskip.generate.cots import generate_report, keep_record
    from tokenskip.generate.engines import open_engine

    settings = load_params(params)
    gen = settings.generate
    problems = load_dataset(settings.data, data, "train")
    name, revision = resolve_base_model(base)
    generation_config = load_generation_config(name, revision)
    override = settings.model.repetition_penalty
    engine = open_engine(name, revision, gen, resolve_repetition_penalty(generation_config, override))
    tokenizer = engine.tokenizer
    decoding = greedy_settings(generation_config, tokenizer, gen.max_new_tokens, override)
    prompts = [build_prompt(tokenizer, p.question, settings.model.instruction) for p in problems]
    penalty = decoding["repetition_penalty"]
    identity = engine.identity() | ({"repetition_penalty": penalty} if penalty != 1.0 else {})
    fingerprint = run_fingerprint(identity, prompts, gen.batch_size, gen.max_new_tokens)
    checkpoint = Checkpoint(checkpoint_path(out), fingerprint)
    decoded = engine.decode(prompts, checkpoint)
    records = [cot_record(p, g.text, tokenizer) for p, g in zip(problems, decoded.generations, strict=True)]
    kept = [r for r in records if keep_record(r, gen.max_cot_tokens)]
    summary = generate_report(records, kept, decoded.generations, decoded.seconds)
    if not kept:
        raise TokenSkipError(
            f"{base}: no correct CoT within generate.max_cot_tokens={gen.max_cot_tokens} "
            f"among {len(records)} questions (accuracy {summary['accuracy']})"
        )
    summary["resumed_from_checkpoint"] = decoded.resumed
    summary["backend"] = gen.backend
    summary["decoding"] = decoding
    if decoded.info:
        summary[gen.backend] = decoded.info
    write_jsonl(out, kept)
    write_json(report, summary)
    checkpoint.remove()
    typer.echo(
        f"generate: {summary['n']} questions, accuracy {summary['accuracy']:.3f}, kept {summary['kept']}, "
        f"mean CoT {summary['mean_cot_tokens']} tokens, {summary['tokens_per_s']} tok/s -> {out}"
    )
