"""Ratio-conditioned fine-tuning: ``prompt(question) <eos> g <eos>`` -> compressed CoT + answer.

The loss covers the completion tokens (and the closing EOS) only; prompt tokens are
labelled -100. Training runs through the transformers ``Trainer`` (cosine schedule with
warmup, random batches, checkpoints every ``save_steps``, resume from the last checkpoint), with
PEFT LoRA on ``finetune.target_modules`` (all linear layers by default). Under ``accelerate
launch`` (N processes, tokenskip.finetune.distributed) the Trainer runs DDP: each global batch of
``finetune.batch_size`` is split into N parts, gradients are all-reduced, and rank 0 alone writes
checkpoints, the adapter/model and report. In one process batches are padding-free
(tokenskip.finetune.batching) and LoRA layers as wide as their rank run folded
(tokenskip.finetune.lora_forward): the same loss and gradients, less time.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.hf import ADAPTER_SUBDIR, MANIFEST_FILE, MODEL_SUBDIR, count_parameters
from tokenskip.core.io import read_jsonl, staged_dir, write_json
from tokenskip.core.manifest import FINGERPRINT_KEY, base_fingerprint
from tokenskip.core.params import DEFAULT_INSTRUCTION, FinetuneParams
from tokenskip.core.progress import progress_enabled
from tokenskip.core.prompts import add_ratio_template
from tokenskip.core.records import SAMPLE_FIELDS
from tokenskip.finetune import live
from tokenskip.finetune.batching import (
    IGNORE_INDEX,
    PADDED,
    PADDING_FREE,
    SAMPLE_WEIGHT,
    collate,
    use_varlen_attention,
)
from tokenskip.finetune.distributed import (
    barrier,
    check_batch_split,
    describe,
    local_rank,
    rank,
    threads_per_process,
    world_size,
)
from tokenskip.finetune.fingerprint import fingerprint
from tokenskip.finetune.lora_forward import fold_lora_layers
from tokenskip.finetune.weighting import sample_weight, trainer_class

FINGERPRINT_FILE = "fingerprint.json"
METHOD = "lora"  # named in the report and the model's manifest (full fine-tuning: README Params)


@dataclass
class FinetuneResult:
    """What a finetune run did, for reports/finetune.json."""

    method: str
    steps: int
    seconds: float
    tokens: int
    batch_layout: str
    folded_lora_layers: int
    final_loss: float | None
    trainable_parameters: int
    total_parameters: int
    n_samples: int
    truncated_samples: int
    resumed_from_step: int = 0
    device: str = "cpu"
    loss_history: list[dict[str, float]] = field(default_factory=list)
    num_processes: int = 1
    per_device_batch_size: int = 0
    threads_per_process: int = 0
    distributed: dict[str, Any] = field(default_factory=dict)


def read_samples(path: str | Path) -> list[dict[str, Any]]:
    """Read ``sample`` records; an empty file or an empty prompt/completion is one clear error."""
    source = Path(path)
    records = read_jsonl(source, required=SAMPLE_FIELDS)
    for line_no, record in enumerate(records, start=1):
        for name in ("prompt", "completion"):
            if not isinstance(record[name], str) or not record[name].strip():
                where = f"{source}: record {line_no} (id {record['id']})"
                raise TokenSkipError(f"{where}: field '{name}' is empty")
        ratio = record["ratio"]
        if not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
            where = f"{source}: record {line_no}"
            raise TokenSkipError(f"{where}: field 'ratio' must be in (0, 1] (got {ratio!r})")
    return records


def encode_sample(tokenizer: Any, prompt: str, completion: str, max_length: int) -> dict[str, list[int]]:
    """Token ids of prompt + completion + EOS, labels -100 on the prompt; cut at ``max_length``."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    input_ids = (prompt_ids + completion_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + completion_ids)[:max_length]
    return {"input_ids": input_ids, "labels": labels}


def prepare_checkpoints(folder: Path, key: str) -> str | None:
    """Return the last checkpoint to resume from, or None; stale checkpoints are removed."""
    from transformers.trainer_utils import get_last_checkpoint

    stamp = folder / FINGERPRINT_FILE
    if folder.is_dir():
        recorded = json.loads(stamp.read_text()).get("key") if stamp.is_file() else None
        if recorded != key:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"key": key}) + "\n")
    for partial in folder.glob("checkpoint-*"):  # killed while saving: trainer_state.json is written last
        if partial.is_dir() and not (partial / "trainer_state.json").is_file():
            shutil.rmtree(partial)
    return get_last_checkpoint(str(folder))


def wrap_model(model: Any, params: FinetuneParams) -> Any:
    """LoRA on the target modules (``all-linear`` by default)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=params.lora_rank,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=params.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def training_arguments(
    params: FinetuneParams, checkpoints: Path, device: str, processes: int = 1, report_to: str = "none"
) -> Any:
    """TrainingArguments from params: cosine with warmup, random batches, bf16 on CUDA, fp32 on CPU.

    ``processes`` > 1: accelerate ``split_batches``, so the sampler sees the single-process global batch
    in the same order and each process computes batch_size / processes rows; the loss is averaged over
    the tokens of all processes (``average_tokens_across_devices``): the loss curves match.
    """
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=params.batch_size,
        gradient_accumulation_steps=params.gradient_accumulation_steps,
        learning_rate=params.learning_rate,
        weight_decay=params.weight_decay,
        num_train_epochs=params.epochs,
        lr_scheduler_type="cosine",
        warmup_steps=params.warmup_ratio,
        logging_steps=params.logging_steps,
        save_strategy="steps",
        save_steps=params.save_steps,
        save_total_limit=2,
        bf16=device == "cuda",
        use_cpu=device != "cuda",
        seed=params.seed,
        data_seed=params.seed,
        report_to=report_to,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=not progress_enabled(),
        accelerator_config={"split_batches": processes > 1},
        average_tokens_across_devices=True,
    )


def _loss_history(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    return [{"step": int(e["step"]), "loss": float(e["loss"])} for e in log_history if "loss" in e]


def sort_target_modules(config_file: Path) -> None:
    """Rewrite PEFT's adapter_config.json with ``target_modules`` sorted: PEFT writes the modules
    ``all-linear`` expands to in set order, which changes with Python's string hashing from run to
    run, so the same training would not give the same bytes."""
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
        write_json(config_file, config)


def _save_outputs(
    model: Any, tokenizer: Any, params: FinetuneParams, out_dir: Path, meta: dict, instruction: str
) -> None:
    """Write adapter/ (LoRA), model/ (merged, with ``finetune.merge``) and the manifest into a staged
    folder, then swap it in. Both folders' tokenizers carry the ratio chat template (``instruction``
    and the trained ratios; :func:`tokenskip.core.prompts.add_ratio_template`): they serve as they are."""
    add_ratio_template(tokenizer, instruction, meta["ratios"])
    with staged_dir(out_dir) as staging:
        model.save_pretrained(str(staging / ADAPTER_SUBDIR), safe_serialization=True)
        sort_target_modules(staging / ADAPTER_SUBDIR / "adapter_config.json")
        tokenizer.save_pretrained(str(staging / ADAPTER_SUBDIR))
        if params.merge:
            model = model.merge_and_unload()
            model.save_pretrained(str(staging / MODEL_SUBDIR), safe_serialization=True)
            tokenizer.save_pretrained(str(staging / MODEL_SUBDIR))
        write_json(staging / MANIFEST_FILE, meta)


def _setup_process(params: FinetuneParams, processes: int) -> str:
    """This process's device: CPU threads split between the processes, one GPU per process."""
    import torch

    from tokenskip.core.hf import pick_device

    if processes > 1:
        check_batch_split(params.batch_size, processes)
    device = pick_device()
    if device == "cuda" and processes > 1:
        torch.cuda.set_device(local_rank())  # "cuda" below then means cuda:LOCAL_RANK
    if device == "cpu":
        torch.set_num_threads(threads_per_process(params.threads, processes))
    return device


def _resume_point(checkpoints: Path, key: Callable[[], str], main: bool) -> str | None:
    """Rank 0 prepares the checkpoint folder (stale ones wiped: ``key()`` differs from its stamp) while
    the others wait; all resume alike. Only rank 0 hashes the inputs."""
    from transformers.trainer_utils import get_last_checkpoint

    resume = prepare_checkpoints(checkpoints, key()) if main else None
    barrier()
    return resume if main else get_last_checkpoint(str(checkpoints))


def run_finetune(
    base_dir: Path, samples_path: Path, out_dir: Path, checkpoints: Path, params: FinetuneParams,
    instruction: str = DEFAULT_INSTRUCTION,
) -> FinetuneResult:
    """Fine-tune the base model in ``base_dir`` on the samples; resume from ``checkpoints``.
    ``instruction`` (params model.instruction) goes into the saved folders' ratio chat template.

    Under ``accelerate launch`` every process calls this; rank 0 alone writes ``out_dir`` and
    removes ``checkpoints``, and every process returns after it has done so.
    """
    from transformers import set_seed

    from tokenskip.core.hf import load_causal_lm, resolve_base_model
    from tokenskip.finetune.progress import attach as show_progress

    samples = read_samples(samples_path)
    processes = world_size()
    device = _setup_process(params, processes)
    name, revision = resolve_base_model(base_dir)
    model, tokenizer = load_causal_lm(name, revision, device)
    model.train()
    encoded = [encode_sample(tokenizer, s["prompt"], s["completion"], params.max_length) for s in samples]
    truncated = sum(1 for e in encoded if len(e["input_ids"]) >= params.max_length)
    if params.full_cot_loss_weight != 1.0:
        for sample, item in zip(samples, encoded, strict=True):
            item[SAMPLE_WEIGHT] = sample_weight(float(sample["ratio"]), params.full_cot_loss_weight)
    set_seed(params.seed)  # the LoRA initialisation, identical in every process and every run
    use_cache = model.config.use_cache
    model.config.use_cache = False  # training builds no KV cache; the saved config keeps its value
    layout = PADDING_FREE if processes == 1 else PADDED  # split_batches splits the global batch by rows
    attention = use_varlen_attention(model) if layout == PADDING_FREE else model.config._attn_implementation
    model = wrap_model(model, params)
    folded = fold_lora_layers(model)
    trainable, total = count_parameters(model)
    report = live.report_to(rank() == 0)  # inside the flow: live curves in MLflow
    args = training_arguments(params, checkpoints, device, processes, report)  # joins the process group
    main = args.process_index == 0
    resume = _resume_point(checkpoints, lambda: fingerprint(params, samples_path, name, revision), main)
    trainer = trainer_class(params.full_cot_loss_weight, layout)(
        model=model,
        args=args,
        train_dataset=encoded,
        data_collator=collate(tokenizer.pad_token_id, layout),
        processing_class=tokenizer,
    )
    show_progress(trainer, sum(len(e["input_ids"]) for e in encoded) * params.epochs)  # a line per 10%
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started
    start_step = int(Path(resume).name.split("-")[-1]) if resume else 0
    steps = trainer.state.global_step
    max_steps = max(trainer.state.max_steps, 1)
    all_tokens = sum(len(e["input_ids"]) for e in encoded) * params.epochs
    tokens = int(all_tokens * (steps - start_step) / max_steps)
    history = _loss_history(trainer.state.log_history)
    ratios = sorted({float(s["ratio"]) for s in samples})
    meta = {"method": METHOD, "base": name, "revision": revision, "ratios": ratios, "steps": steps,
            FINGERPRINT_KEY: base_fingerprint(name, revision) if main else None}  # evaluate/register check it
    distributed = describe()
    if main:
        model.config.use_cache = use_cache
        model.set_attn_implementation(attention)
        _save_outputs(trainer.model, tokenizer, params, out_dir, meta, instruction)
        shutil.rmtree(checkpoints, ignore_errors=True)  # kept only while a run is unfinished
    barrier()
    return FinetuneResult(
        method=METHOD,
        steps=steps,
        seconds=round(seconds, 2),
        tokens=tokens,
        batch_layout=layout,
        folded_lora_layers=folded,
        final_loss=history[-1]["loss"] if history else float(output.training_loss),
        trainable_parameters=trainable,
        total_parameters=total,
        n_samples=len(samples),
        truncated_samples=truncated,
        resumed_from_step=start_step,
        device=device,
        loss_history=history,
        num_processes=processes,
        per_device_batch_size=params.batch_size // processes,
        threads_per_process=threads_per_process(params.threads, processes) if device == "cpu" else 0,
        distributed=distributed,
    )
