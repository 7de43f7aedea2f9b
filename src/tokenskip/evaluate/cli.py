"""``tokenskip evaluate``: each ratio g of the fine-tuned model against the base-model baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from tokenskip.core.params import load_params


def _check_questions(test_file: Path, problems: list, model: Any, tokenizer: Any, instruction: str) -> None:
    """Refuse a test question whose prompt exceeds the model's context, naming file and record,
    before any model runs (each condition's decoding checks its own prompts again)."""
    from tokenskip.core.decoding import check_prompt_lengths, model_context
    from tokenskip.core.prompts import build_prompt

    prompts = [build_prompt(tokenizer, p.question, instruction) for p in problems]
    labels = [f"{test_file}: record {n} (id {p.id!r}): field 'question'" for n, p in enumerate(problems, 1)]
    check_prompt_lengths(tokenizer, prompts, model_context(model, tokenizer), labels)


def evaluate(
    base: Path = typer.Option(Path("models/base"), help="Base model folder (baselines)"),
    model: Path = typer.Option(Path("models/tokenskip"), help="Fine-tuned model folder (from finetune)"),
    data: Path = typer.Option(Path("data"), help="Data folder: <dataset>/test.jsonl (or data.test_path)"),
    report: Path = typer.Option(Path("reports/evaluate.json"), help="Report (DVC metric)"),
    pareto: Path = typer.Option(Path("reports/pareto.csv"), help="Pareto CSV (DVC plot)"),
    plot: Path = typer.Option(Path("reports/pareto.png"), help="Pareto PNG"),
    outputs: Path = typer.Option(
        Path("reports/outputs.jsonl"), help="A few evaluated outputs per condition (JSON Lines)"
    ),
    per_question: Path = typer.Option(
        Path("artifacts/evaluate/per_question.jsonl"), help="Every question's result under every condition"
    ),
    params: Path = typer.Option(Path("params.yaml"), help="Params file"),
) -> None:
    """Accuracy, CoT tokens, actual ratio, latency (batch 1) and throughput per g and baseline."""
    import torch

    from tokenskip.core.decoding import greedy_settings, override_repetition_penalty
    from tokenskip.core.hf import (
        MANIFEST_FILE,
        load_causal_lm,
        load_finetuned,
        manifest_ratios,
        pick_device,
        resolve_base_model,
    )
    from tokenskip.core.io import write_json, write_jsonl
    from tokenskip.core.manifest import check_base_model
    from tokenskip.core.problems import dataset_file, load_file
    from tokenskip.evaluate.conditions import check_ratios, evaluate_models
    from tokenskip.evaluate.pareto import pareto_rows, plot_pareto, write_pareto_csv

    settings = load_params(params)
    check_ratios(settings.evaluate.ratios, settings.prune.ratios, f"{params}: prune.ratios")
    check_base_model(model, base)  # the base model it was fine-tuned on, by content
    trained = manifest_ratios(model)
    if trained is not None:
        check_ratios(settings.evaluate.ratios, trained, str(model / MANIFEST_FILE))
    test_file = dataset_file(settings.data, data, "test")
    problems = load_file(settings.data, test_file, "test")[: settings.data.n_test]
    device = pick_device()
    if device == "cpu":
        torch.set_num_threads(settings.evaluate.threads)
    penalty = settings.model.repetition_penalty
    tuned = load_finetuned(model, base, device)
    override_repetition_penalty(tuned[0], penalty)
    _check_questions(test_file, problems, *tuned, settings.model.instruction)
    base_pair = load_causal_lm(*resolve_base_model(base), device) if settings.evaluate.baselines else None
    if base_pair is not None:
        override_repetition_penalty(base_pair[0], penalty)
    instruction = settings.model.instruction
    payload, examples, table = evaluate_models(tuned, base_pair, problems, settings.evaluate, instruction)
    max_new_tokens = settings.evaluate.max_new_tokens
    payload["decoding"] = greedy_settings(tuned[0].generation_config, tuned[1], max_new_tokens)
    rows = pareto_rows(payload)
    write_jsonl(outputs, examples)
    write_jsonl(per_question, table)
    write_pareto_csv(pareto, rows)
    plot_pareto(plot, rows, title=f"TokenSkip on {settings.data.dataset}")
    write_json(report, payload)
    summary = ", ".join(f"g={k}: acc {m['accuracy']:.3f} ratio {m['actual_ratio']:.2f}"
                        for k, m in payload["ratios"].items())
    typer.echo(f"evaluate on {len(problems)} problems: {summary} -> {report}")
