"""Data preparation command (not a DVC stage: data/ is tracked by data.dvc)."""

from __future__ import annotations

from pathlib import Path

import typer

from tokenskip.core.params import load_params
from tokenskip.data.synthetic import write_synthetic


def synthesize(
    out: Path = typer.Option(Path("data/synthetic"), help="Folder for train.jsonl/test.jsonl"),
    params: Path = typer.Option(Path("params.yaml"), help="Params file"),
) -> None:
    """Write the seeded synthetic arithmetic set (GSM8K format) from params.data."""
    data = load_params(params).data
    counts = write_synthetic(out, data.seed, data.synthetic_train, data.synthetic_test)
    typer.echo(f"wrote {counts['train']} train / {counts['test']} test problems to {out}")
