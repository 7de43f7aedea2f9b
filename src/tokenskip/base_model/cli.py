"""``tokenskip base-model``: train the tiny bootstrap model, or resolve and record a named one."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from tokenskip.core.hf import runtime_environment
from tokenskip.core.io import staged_dir, write_json
from tokenskip.core.params import Params, load_params

BOOTSTRAP = "bootstrap"


def _log(step: int, loss: float, tokens_per_s: float) -> None:
    """One log line every 50 steps on stderr (what the progress bar shows, for logs without a tty)."""
    from tokenskip.core.progress import progress_enabled

    if not progress_enabled():
        line = f"base-model: step {step} loss {loss:.4f} tokens/s {tokens_per_s:,.0f}"
        print(line, file=sys.stderr, flush=True)


def _train(params: Params, data: Path, staged: Path) -> dict[str, Any]:
    from tokenskip.base_model.build import save_bootstrap, train_bootstrap
    from tokenskip.base_model.evaluate import greedy_accuracy
    from tokenskip.core.hf import count_parameters
    from tokenskip.core.problems import load_problems

    settings = params.base_model
    train = load_problems(data / "synthetic" / "train.jsonl", "synthetic-train")
    test = load_problems(data / "synthetic" / "test.jsonl", "synthetic-test")[: params.data.n_test]
    model, tokenizer, result = train_bootstrap(train, params.model.instruction, settings, _log)
    save_bootstrap(model, tokenizer, str(staged))
    scores = greedy_accuracy(
        model, tokenizer, test, params.model.instruction,
        batch_size=settings.eval_batch_size, max_new_tokens=settings.eval_max_new_tokens,
    )
    return {
        "model": BOOTSTRAP,
        "trained": True,
        "parameters": count_parameters(model)[1],
        "vocab_size": len(tokenizer),
        "train_problems": len(train),
        "num_processes": settings.num_processes,
        "min_accuracy": settings.min_accuracy,
        "steps": result.steps,
        "max_steps": settings.max_steps,
        "stopped_by": result.stopped_by,
        "time_budget_s": settings.time_budget_s,
        "train_seconds": result.train_seconds,
        "train_tokens": result.tokens,
        "tokens_per_s": result.tokens_per_s,
        "first_loss": round(result.first_loss, 4),
        "final_loss": round(result.final_loss, 4),
        **scores,
    }


def _record(params: Params, staged: Path) -> dict[str, Any]:
    from tokenskip.base_model.resolve import resolve_named_model
    from tokenskip.core.hf import POINTER_FILE

    record = resolve_named_model(params.model.name, params.model.revision)
    write_json(staged / POINTER_FILE, {k: record[k] for k in ("name", "revision", "path", "source")})
    return {"model": params.model.name, "trained": False, "parameters": None, "steps": 0,
            "train_seconds": 0.0, "tokens_per_s": None, "final_loss": None, "accuracy": None, **record}


def base_model(
    data: Path = typer.Option(Path("data"), help="Data folder (synthetic/train.jsonl, synthetic/test.jsonl)"),
    out: Path = typer.Option(Path("models/base"), help="Output: model folder or model.json pointer"),
    report: Path = typer.Option(Path("reports/base-model.json"), help="Report (DVC metric)"),
    params: Path = typer.Option(Path("params.yaml"), help="Params file"),
) -> None:
    """Train the bootstrap model (model.name=bootstrap) or resolve and record model.name."""
    settings = load_params(params)
    started = time.perf_counter()
    with staged_dir(out) as staged:
        if settings.model.name == BOOTSTRAP:
            summary = _train(settings, data, staged)
        else:
            summary = _record(settings, staged)
        summary["stage_seconds"] = round(time.perf_counter() - started, 2)
        summary["environment"] = runtime_environment()
    write_json(report, summary)
    accuracy = summary.get("accuracy")
    shown = f", accuracy {accuracy:.3f}" if accuracy is not None else ""
    typer.echo(f"base-model: {summary['model']} -> {out}{shown}")
    if summary["trained"]:
        from tokenskip.base_model.evaluate import check_accuracy_floor

        check_accuracy_floor(accuracy, settings.base_model.min_accuracy, report)

