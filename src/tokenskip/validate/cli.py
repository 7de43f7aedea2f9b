"""validate stage: Great Expectations suites over cot.jsonl, pruned_<g>.jsonl and samples.jsonl."""

from __future__ import annotations

from pathlib import Path

import typer

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import write_json
from tokenskip.core.params import load_params


def validate(
    cot: Path = typer.Option(..., help="Generated CoTs (cot.jsonl)"),
    pruned: Path = typer.Option(..., help="Folder with pruned_<g>.jsonl and samples.jsonl"),
    base: Path = typer.Option(Path("models/base"), help="Base model folder: its tokenizer recounts tokens"),
    report: Path = typer.Option(..., help="JSON report (success, per-suite statistics, failures)"),
    docs: Path = typer.Option(..., help="Folder for the static HTML data docs"),
    params: Path = typer.Option(Path("params.yaml"), help="Params file"),
) -> None:
    """Validate generated, pruned and training data; exit 1 if any expectation fails."""
    from tokenskip.core.hf import load_tokenizer, resolve_base_model
    from tokenskip.validate import Thresholds, build_frames, format_failure, load_inputs, validate_frames

    config = load_params(params)
    thresholds = Thresholds(
        max_cot_tokens=config.generate.max_cot_tokens,
        ratios=config.prune.ratios,
        force_digits=config.prune.force_digits,
        ratio_tolerance=config.validate_.ratio_tolerance,
        ratio_mix_tolerance=config.validate_.ratio_mix_tolerance,
    )
    try:
        inputs = load_inputs(cot, pruned)
        tokenizer = load_tokenizer(*resolve_base_model(base))
        frames = build_frames(inputs, thresholds.ratios, tokenizer)
    except TokenSkipError as exc:
        write_json(report, {"success": False, "error": str(exc), "suites": {}, "failures": []})
        raise
    result = validate_frames(frames, thresholds, docs)
    write_json(report, result)
    failed = len(result["failures"])
    total = sum(s["evaluated_expectations"] for s in result["suites"].values())
    for failure in result["failures"]:
        typer.echo(format_failure(failure), err=True)
    if failed:
        typer.echo(f"validate: {failed} of {total} expectations failed; see {report} and "
                   f"{result['docs']}", err=True)
        raise typer.Exit(1)
    rows = ", ".join(f"{name} {s['rows']}" for name, s in result["suites"].items())
    typer.echo(f"validate: all {total} expectations passed ({rows} rows) in {result['seconds']} s; "
               f"data docs {result['docs']}")
