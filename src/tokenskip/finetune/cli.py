"""``tokenskip finetune``: ratio-conditioned LoRA (or full) fine-tuning of the base model.

With ``finetune.num_processes: N > 1`` the command relaunches itself as N data-parallel workers
under ``accelerate launch`` with the config given by ``--accelerate-config`` (a file, or a folder
holding multi-cpu.yaml / multi-gpu.yaml, picked by whether CUDA is visible); rank 0 writes the
outputs and the report, so ``dvc repro`` and the Prefect flow run it unchanged.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from tokenskip.core.params import load_params


def _launch_workers(
    base: Path, samples: Path, out: Path, checkpoints: Path, report: Path, params: Path, config: Path, n: int,
    validation: Path | None = None,
) -> None:
    """Run this command again as ``n`` processes under ``accelerate launch``; raises if one fails."""
    import torch

    from tokenskip.finetune.distributed import accelerate_config, relaunch, threads_per_process

    config_file = accelerate_config(config, torch.cuda.is_available())
    threads = threads_per_process(load_params(params).finetune.threads, n)
    arguments = ["finetune", "--base", str(base), "--samples", str(samples), "--out", str(out),
                 "--checkpoints", str(checkpoints), "--report", str(report), "--params", str(params),
                 "--accelerate-config", str(config)]
    if validation is not None:
        arguments += ["--validation", str(validation)]
    relaunch(config_file, n, threads, arguments)


def finetune(
    base: Path = typer.Option(Path("models/base"), help="Base model folder (from base-model)"),
    samples: Path = typer.Option(Path("artifacts/prune/samples.jsonl"), help="Training sample records"),
    out: Path = typer.Option(Path("models/tokenskip"), help="Output: adapter/ and/or model/"),
    checkpoints: Path = typer.Option(
        Path("artifacts/finetune-checkpoints"), help="Trainer checkpoints (kept to resume a killed run)"
    ),
    report: Path = typer.Option(Path("reports/finetune.json"), help="Report (DVC metric)"),
    params: Path = typer.Option(Path("params.yaml"), help="Params file"),
    accelerate_config: Path = typer.Option(
        Path("infra/accelerate"),
        help="accelerate config file, or a folder with multi-cpu.yaml / multi-gpu.yaml "
        "(used when finetune.num_processes > 1)",
    ),
    validation: Path | None = typer.Option(
        None, help="validate's report (reports/validate.json): refuse to train unless its success is true"
    ),
) -> None:
    """Fine-tune on samples `prompt <eos> g <eos>` -> compressed CoT; resume after a kill."""
    from tokenskip.core.io import write_json
    from tokenskip.finetune.distributed import is_launched_worker, rank
    from tokenskip.finetune.gate import require_validated
    from tokenskip.finetune.training import read_samples, run_finetune

    if validation is not None:
        require_validated(validation)  # failed validation stops the stage before anything is written
    settings = load_params(params).finetune
    read_samples(samples)  # bad input fails before the model loads
    if settings.num_processes > 1 and not is_launched_worker():
        _launch_workers(base, samples, out, checkpoints, report, params, accelerate_config,
                        settings.num_processes, validation)
        return
    result = run_finetune(base, samples, out, checkpoints, settings,
                          instruction=load_params(params).model.instruction)
    if rank() != 0:
        return
    payload = asdict(result)
    payload["tokens_per_s"] = round(result.tokens / result.seconds, 1) if result.seconds else None
    write_json(report, payload)
    typer.echo(
        f"finetune ({result.method}, {result.num_processes} process(es)): {result.steps} steps in "
        f"{result.seconds:.1f} s, final loss {result.final_loss}, "
        f"{result.trainable_parameters} trainable parameters -> {out}"
    )
