"""The paper's evaluation: accuracy, CoT tokens, actual ratio, latency and throughput per ratio g,
against the base model, prompt-based reduction and truncation at the same budgets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tokenskip.core.decoding import generate_greedy, solve_problems
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.problems import Problem
from tokenskip.core.prompts import build_prompt, ratio_key, trained_ratios
from tokenskip.core.records import evaluated_record
from tokenskip.evaluate.breakdown import add_breakdowns
from tokenskip.evaluate.statistics import BootstrapSettings, accuracy_ci, paired_statistics

PROMPT_BASELINES = {
    "be_concise": "Be concise.",
    "only_numbers": "Only use numbers or equations.",
    "lc_prompt_0.5": "Please reduce 50% of the words in your Chain-of-Thought process.",
}
METRIC_KEYS = ("accuracy", "accuracy_ci", "mean_cot_tokens", "actual_ratio", "latency_s", "throughput_tok_s")
PER_QUESTION_FIELDS = ("id", "correct", "cot_tokens", "new_tokens", "prediction", "output")
REFERENCE_G1 = "g1"  # gates.reference: TokenSkip at g = 1.0 (the other one is "original")


@dataclass(frozen=True)
class Condition:
    """One evaluated setting: which model, prompt (instruction, ratio tag) and token budget."""

    name: str
    g: float | None
    instruction: str
    prompt_ratio: float | None = None
    max_new_tokens: int | None = None


@dataclass
class ConditionResult:
    """Metrics of one condition plus its per-problem records, prompts and token budget."""

    metrics: dict[str, float | None]
    records: list[dict[str, Any]]
    prompts: list[str] = field(default_factory=list)
    budget: int = 0


def check_ratios(ratios: Sequence[float], trained: Sequence[float], source: str) -> None:
    """Every evaluated ratio must have been trained; otherwise one clear error line."""
    known = {round(r, 6) for r in trained}
    missing = [r for r in ratios if r < 1.0 and round(r, 6) not in known]
    if missing:
        raise TokenSkipError(
            f"evaluate.ratios: {', '.join(f'{r:g}' for r in missing)} never trained "
            f"(trained ratios in {source}: {sorted(known)})"
        )


def run_condition(
    model: Any,
    tokenizer: Any,
    problems: Sequence[Problem],
    condition: Condition,
    settings: Any,
) -> ConditionResult:
    """Generate for every problem (batched) and score; latency is measured by :func:`measure_latency`."""
    prompts = [
        build_prompt(tokenizer, p.question, condition.instruction, condition.prompt_ratio) for p in problems
    ]
    budget = condition.max_new_tokens or settings.max_new_tokens
    solved, outputs, seconds = solve_problems(
        model, tokenizer, problems, prompts, settings.batch_size, budget, desc=f"evaluate {condition.name}"
    )
    records = [evaluated_record(r, o.new_tokens) for r, o in zip(solved, outputs, strict=True)]
    correct = sum(r["correct"] for r in records)
    cot_tokens = [r["cot_tokens"] for r in records]
    new_tokens = sum(o.new_tokens for o in outputs)
    metrics = {
        "accuracy": round(correct / len(problems), 4),
        "accuracy_ci": accuracy_ci([r["correct"] for r in records], settings.confidence),
        "mean_cot_tokens": round(sum(cot_tokens) / len(cot_tokens), 2),
        "actual_ratio": None,
        "latency_s": None,
        "throughput_tok_s": round(new_tokens / seconds, 1) if seconds else None,
    }
    return ConditionResult(metrics, records, prompts, budget)


def measure_latency(runs: Sequence[tuple[Any, Any, ConditionResult]], n: int) -> None:
    """Seconds per sample at batch size 1 on the first ``n`` prompts of each run, set in its metrics.

    Runs are interleaved problem by problem (g = 1.0, 0.9, ..., then the next problem), so a
    change in machine load between conditions does not bias their latency ratio.
    """
    totals = [0.0] * len(runs)
    count = min(n, *(len(result.prompts) for _, _, result in runs))
    for index in range(count):
        for slot, (model, tokenizer, result) in enumerate(runs):
            prompt = [result.prompts[index]]
            _, seconds = generate_greedy(model, tokenizer, prompt, 1, result.budget, "latency")
            totals[slot] += seconds
    for (_, _, result), total in zip(runs, totals, strict=True):
        result.metrics["latency_s"] = round(total / count, 4) if count else None


def with_actual_ratios(results: dict[str, ConditionResult], reference: str) -> dict[str, dict]:
    """Metrics per condition with ``actual_ratio`` = mean CoT tokens / those of ``reference``."""
    base = results[reference].metrics["mean_cot_tokens"]
    table = {}
    for name, result in results.items():
        metrics = dict(result.metrics)
        tokens = metrics["mean_cot_tokens"]
        metrics["actual_ratio"] = round(tokens / base, 4) if base else (1.0 if not tokens else None)
        table[name] = {key: metrics[key] for key in METRIC_KEYS}
    return table


def tokenskip_conditions(ratios: Sequence[float], instruction: str) -> list[Condition]:
    """g = 1.0 (no ratio tag) followed by each configured ratio, largest first."""
    values = trained_ratios(ratios)
    return [Condition(ratio_key(g), g, instruction, None if g >= 1.0 else g) for g in values]


def prompt_baselines(instruction: str) -> list[Condition]:
    """The base model as is, then the paper's prompt-based reduction instructions."""
    conditions = [Condition("original", 1.0, instruction)]
    for name, extra in PROMPT_BASELINES.items():
        g = 0.5 if name.endswith("0.5") else None
        conditions.append(Condition(name, g, f"{instruction} {extra}"))
    return conditions


def truncation_conditions(
    ratios: Sequence[float], instruction: str, original_tokens: float
) -> list[Condition]:
    """The base model with ``max_new_tokens = g x`` its mean original CoT length."""
    return [
        Condition(f"truncation_{g:g}", g, instruction, None, max(1, round(g * original_tokens)))
        for g in sorted(ratios, reverse=True)
    ]


def per_question_rows(label: str, result: ConditionResult) -> list[dict[str, Any]]:
    """Every question's result under one condition (``condition`` = ``g=<g>`` or a baseline's name)."""
    return [{"condition": label, **{k: r[k] for k in PER_QUESTION_FIELDS}} for r in result.records]


def with_paired_statistics(
    report: dict[str, Any], tuned: dict[str, ConditionResult], base: dict[str, ConditionResult], settings: Any
) -> None:
    """Add ``paired`` to every ratio: its accuracy drop and token reduction against each reference
    (``original`` when the baselines ran, and ``g1``), with paired CIs and McNemar's p."""
    references = {REFERENCE_G1: tuned[ratio_key(1.0)].records}
    if "original" in base:
        references = {"original": base["original"].records, **references}
    bootstrap = BootstrapSettings(settings.bootstrap_resamples, settings.confidence, settings.bootstrap_seed)
    stats = paired_statistics({k: r.records for k, r in tuned.items()}, references, bootstrap)
    for key, paired in stats.items():
        report["ratios"][key]["paired"] = paired


def _condition_outputs(name: str, g: float | None, result: ConditionResult, count: int) -> list[dict]:
    return [{"method": name, "g": g, **record} for record in result.records[:count]]


def _run_baselines(
    base: tuple[Any, Any], problems: Sequence[Problem], settings: Any, instruction: str
) -> tuple[dict[str, ConditionResult], list[Condition]]:
    """Prompt baselines, then truncation at g x the original mean CoT length (base model)."""
    results: dict[str, ConditionResult] = {}
    conditions = prompt_baselines(instruction)
    for condition in conditions:
        results[condition.name] = run_condition(*base, problems, condition, settings)
    original_tokens = results["original"].metrics["mean_cot_tokens"] or 1.0
    truncations = truncation_conditions(settings.truncation_ratios, instruction, original_tokens)
    for condition in truncations:
        results[condition.name] = run_condition(*base, problems, condition, settings)
    return results, conditions + truncations


def evaluate_models(
    tuned: tuple[Any, Any],
    base: tuple[Any, Any] | None,
    problems: Sequence[Problem],
    settings: Any,
    instruction: str,
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Evaluate the fine-tuned model at g = 1.0 and each ratio, and (with ``base``) the baselines.

    Latency: the TokenSkip ratios and ``original`` on ``latency_samples`` problems, interleaved;
    the other baselines on ``baseline_latency_samples``. Returns the evaluate.json payload,
    a few evaluated records per condition (``reports/outputs.jsonl``) and every question's result
    under every condition (the per-question table the paired statistics are computed from).
    """
    if not problems:
        raise TokenSkipError("evaluate: the test split is empty")
    conditions = tokenskip_conditions(settings.ratios, instruction)
    tuned_results = {c.name: run_condition(*tuned, problems, c, settings) for c in conditions}
    keep = settings.n_outputs_per_condition
    outputs = [row for c in conditions
               for row in _condition_outputs("tokenskip", c.g, tuned_results[c.name], keep)]
    timed = [(*tuned, result) for result in tuned_results.values()]
    base_results: dict[str, ConditionResult] = {}
    if base is not None:
        base_results, base_conditions = _run_baselines(base, problems, settings, instruction)
        timed.append((*base, base_results["original"]))
        others = [(*base, r) for name, r in base_results.items() if name != "original"]
        measure_latency(others, settings.baseline_latency_samples)
        outputs += [row for c in base_conditions
                    for row in _condition_outputs(c.name, c.g, base_results[c.name], keep)]
    measure_latency(timed, settings.latency_samples)
    report: dict[str, Any] = {
        "n_test": len(problems),
        "ratios": with_actual_ratios(tuned_results, ratio_key(1.0)),
        "baselines": with_actual_ratios(base_results, "original") if base_results else {},
    }
    with_paired_statistics(report, tuned_results, base_results, settings)
    add_breakdowns(report, problems, {k: r.records for k, r in tuned_results.items()},
                   {k: r.records for k, r in base_results.items()}, ratio_key(1.0))
    labelled = {f"g={name}": result for name, result in tuned_results.items()} | base_results
    per_question = [row for label, result in labelled.items() for row in per_question_rows(label, result)]
    return report, outputs, per_question
