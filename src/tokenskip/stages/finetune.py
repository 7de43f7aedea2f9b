"""``tokenskip finetune``: ratio-conditioned LoRA (or full) fine-tuning of the base model."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from tokenskip.params import load_params


def finetune(
    base: Path = typer.Option(Path("models/base"), help="Base model folder (from base-model)"),
    samples: Path = typer.Option(Path("artifacts/prune/samples.jsonl"), help="Training sample records"),
    out: Path = typer.Option(Path("models/tokenskip"), help="Output: adapter/ and/or model/"),
    checkpoints: Path = typer.Option(
        Path("artifacts/finetune-checkpoints"), help="Trainer checkpoints (kept to resume a killed run)"
    ),
    report: Path = typer.Option(Path("reports/finetune.json"), help="Report (DVC metric)"),
    params: Path = typer.Option(Path("params.yaml"), help="Params file"),
) -> None:
    """Fine-tune on ``prompt <eos> g <eos> -> compressed CoT`` samples; resume after a kill."""
    from tokenskip.finetuning import read_samples, run_finetune
    from tokenskip.io import write_json

    settings = load_params(params).finetune
    read_samples(samples)  # bad input fails before the model loads
    result = run_finetune(base, samples, out, checkpoints, settings)
    payload = asdict(result)
    payload["tokens_per_s"] = round(result.tokens / result.seconds, 1) if result.seconds else None
    write_json(report, payload)
    typer.echo(
        f"finetune ({result.method}): {result.steps} steps in {result.seconds:.1f} s, "
        f"final loss {result.final_loss}, {result.trainable_parameters} trainable parameters -> {out}"
    )
