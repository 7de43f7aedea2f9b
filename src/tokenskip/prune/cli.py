"""``tokenskip prune``: score every CoT word, prune to each ratio, build the training samples."""

from __future__ import annotations

from pathlib import Path

import typer

from tokenskip.core.params import load_params


def _check_cots(path: Path, records: list[dict]) -> None:
    """Every CoT is text, and every id names one record (samples pair a question with the CoT of
    its id): else one line naming the file, the line and the id."""
    from tokenskip.core.errors import TokenSkipError

    first_line: dict[str, int] = {}
    for line, record in enumerate(records, start=1):
        if not isinstance(record["cot"], str) or not record["cot"].strip():
            raise TokenSkipError(f"{path}:{line}: field 'cot' is empty (record id {record['id']!r})")
        key = repr(record["id"])
        if key in first_line:
            raise TokenSkipError(f"{path}:{line}: field 'id': duplicate id {record['id']!r} "
                                 f"(first at line {first_line[key]})")
        first_line[key] = line


def prune(
    base: Path = typer.Option(Path("models/base"), help="Base model folder (target tokenizer, scorer)"),
    cot: Path = typer.Option(Path("artifacts/generate/cot.jsonl"), help="cot records from generate"),
    out: Path = typer.Option(Path("artifacts/prune"), help="Folder for pruned_<g>.jsonl and samples.jsonl"),
    report: Path = typer.Option(Path("reports/prune.json"), help="Report (DVC metric)"),
    params: Path = typer.Option(Path("params.yaml"), help="Params file"),
) -> None:
    """Prune each CoT to every ratio in prune.ratios; one seeded-ratio training sample per question."""
    import torch

    from tokenskip.core.hf import load_causal_lm, load_tokenizer, pick_device, resolve_base_model
    from tokenskip.core.io import read_jsonl, staged_dir, write_json, write_jsonl
    from tokenskip.core.prompts import ratio_key
    from tokenskip.prune.prune_set import prune_all
    from tokenskip.prune.scorers import make_scorer

    settings = load_params(params)
    cfg = settings.prune
    records = read_jsonl(cot, required=("id", "question", "gold", "cot", "cot_tokens"))
    _check_cots(cot, records)
    if pick_device() == "cpu":
        torch.set_num_threads(cfg.threads)
    name, revision = resolve_base_model(base)
    needs_base = cfg.scorer == "self-information" and cfg.scorer_model is None
    base_pair = load_causal_lm(name, revision) if needs_base else None
    tokenizer = base_pair[1] if base_pair else load_tokenizer(name, revision)
    scorer = make_scorer(cfg.scorer, cfg.scorer_model, base_pair, cfg.batch_size, seed=cfg.seed)
    pruned, samples, summary = prune_all(records, scorer, tokenizer, cfg, settings.model.instruction)
    with staged_dir(out) as staging:
        for ratio, rows in pruned.items():
            write_jsonl(staging / f"pruned_{ratio_key(ratio)}.jsonl", rows)
        write_jsonl(staging / "samples.jsonl", samples)
    write_json(report, summary)
    shown = ", ".join(f"g={k}: {v['actual_ratio_mean']}" for k, v in summary["ratios"].items())
    typer.echo(f"prune ({cfg.scorer}): {len(records)} CoTs, actual ratios {shown} -> {out}")

