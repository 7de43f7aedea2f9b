"""validate stage: Great Expectations suites over cot.jsonl, pruned_<g>.jsonl and samples.jsonl.

``--report`` is deterministic (identical inputs, identical bytes: finetune depends on it in
dvc.yaml); what varies run to run, the wall-clock time, goes to ``--timing``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from tokenskip.core.errors import ExitCode, TokenSkipError
from tokenskip.core.io import write_json
from tokenskip.core.params import load_params


def timing_path(report: Path, timing: Path | None) -> Path:
    """``timing``, or by default ``<report stem>-timing.json`` next to the report."""
    return timing if timing is not None else report.with_name(f"{report.stem}-timing.json")


def _run(cot: Path, pruned: Path, base: Path, docs: Path, params: Path) -> dict[str, Any]:
    """Load params and inputs, build the frames, validate; the report dict (see validate_frames).
    A TokenSkipError (unreadable input, no tokenizer) propagates."""
    from tokenskip.core.hf import load_tokenizer, resolve_base_model
    from tokenskip.validate import Thresholds, build_frames, load_inputs, validate_frames

    config = load_params(params)
    thresholds = Thresholds(
        max_cot_tokens=config.generate.max_cot_tokens,
        ratios=config.prune.ratios,
        force_digits=config.prune.force_digits,
        ratio_tolerance=config.validate_.ratio_tolerance,
        ratio_mix_tolerance=config.validate_.ratio_mix_tolerance,
        force_tokens=tuple(config.prune.force_tokens),
        answers="number" if config.data.dataset in ("synthetic", "gsm8k") else "latex",
    )
    inputs = load_inputs(cot, pruned)
    tokenizer = load_tokenizer(*resolve_base_model(base))
    frames = build_frames(inputs, thresholds.ratios, tokenizer, thresholds.force_tokens, thresholds.answers)
    return validate_frames(frames, thresholds, docs)


def validate(
    cot: Path = typer.Option(..., help="Generated CoTs (cot.jsonl)"),
    pruned: Path = typer.Option(..., help="Folder with pruned_<g>.jsonl and samples.jsonl"),
    base: Path = typer.Option(Path("models/base"), help="Base model folder: its tokenizer recounts tokens"),
    report: Path = typer.Option(..., help="JSON report (success, per-suite statistics, failures); "
                                "deterministic: identical inputs give identical bytes"),
    docs: Path = typer.Option(..., help="Folder for the static HTML data docs"),
    timing: Path | None = typer.Option(None, help="JSON file for the wall-clock seconds "
                                       "(default: <report stem>-timing.json next to the report)"),
    params: Path = typer.Option(Path("params.yaml"), help="Params file"),
) -> None:
    """Validate generated, pruned and training data; exit 3 if any expectation fails."""
    from tokenskip.validate import format_failure

    start = time.perf_counter()
    try:
        result = _run(cot, pruned, base, docs, params)
    except TokenSkipError as exc:
        write_json(report, {"success": False, "error": str(exc), "suites": {}, "failures": []})
        raise
    finally:
        seconds = round(time.perf_counter() - start, 3)
        write_json(timing_path(report, timing), {"seconds": seconds})
    write_json(report, result)
    failed = len(result["failures"])
    total = sum(s["evaluated_expectations"] for s in result["suites"].values())
    for failure in result["failures"]:
        typer.echo(format_failure(failure), err=True)
    if failed:
        typer.echo(f"validate: {failed} of {total} expectations failed; see {report} and "
                   f"{result['docs']}", err=True)
        raise typer.Exit(ExitCode.VALIDATION_FAILED)
    rows = ", ".join(f"{name} {s['rows']}" for name, s in result["suites"].items())
    typer.echo(f"validate: all {total} expectations passed ({rows} rows) in {seconds} s; "
               f"data docs {result['docs']}")
