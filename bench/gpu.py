"""GPU figures for the paper profile: the real Qwen2.5-7B-Instruct architecture (its config.json
values), random weights built in bf16 directly on the GPU (no download, nothing from a hub).

Phases, each capped so that the whole run fits ``--budget-s`` (default 525 s, under 9 min in all):
peak (dense bf16 matmul rate of 8192^3 GEMMs: the MFU denominator), prompts, model_build,
transformers_generation (batched greedy decoding, KV cache, left padding, batches sorted by length,
of the first 256 GSM8K test questions; min_new_tokens = max_new_tokens so random weights never stop),
lora (50 timed steps, r=8, alpha=16, all linear layers, AdamW, random ids, no gradient checkpointing:
batch 8 x 512 takes ~60 GB), vllm where importable (same ids, vllm.LLM(load_format="dummy")).
ONE JSON line on stdout, also when a phase fails or runs out of time (the phase then has "error");
progress on stderr; memory is torch.cuda.max_memory_allocated, per phase and overall.

Prompt lengths (no Qwen tokenizer offline): instruction + "\\n" + question (the pipeline's default
instruction) counts 30 + ceil(chars / 4) tokens: Qwen2.5 BPE reads ~4 English chars per token, and
30 = the chat template's fixed tokens (default system message, role markers). Ids: seeded random.

FLOPs per token (N = nn.Linear weights incl. the LM head, L layers, d hidden, T sequence): forward
2N + 4LdT (attention scores and values, causal mask not discounted); LoRA training = forward +
backward through activations only (frozen base weights need no weight gradients) = 2 x forward,
adapter FLOPs ignored; a generated token with context c (prompt + tokens so far) = 2N + 4Ldc, the
prefill's FLOPs not counted but its time included. MFU = FLOP/s / the matmul peak of the same run.

Without CUDA the same code runs on a scaled-down config on the CPU (fp32) so the script is
exercised anywhere; the JSON then says ``"gpu": false`` and its figures are not GPU figures.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

import torch

STARTED = time.perf_counter()
QWEN25_7B: dict[str, Any] = dict(  # Qwen/Qwen2.5-7B-Instruct config.json
    vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
    num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
    rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
    bos_token_id=151643, eos_token_id=151645)
CPU_SMOKE: dict[str, Any] = dict(
    vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=False, bos_token_id=998,
    eos_token_id=999)
GPU_SIZES = dict(prompts=256, gen_batch=64, max_new_tokens=256, lora_batch=8, lora_seq=512,
                 lora_steps=50, gemm=8192, gemm_repeats=1000)
CPU_SIZES = dict(prompts=8, gen_batch=4, max_new_tokens=8, lora_batch=2, lora_seq=64,
                 lora_steps=3, gemm=512, gemm_repeats=5)
GSM8K = Path(__file__).resolve().parents[1] / "data" / "gsm8k" / "test.jsonl"
INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
CHARS_PER_TOKEN, TEMPLATE_TOKENS = 4, 30


def log(message: str) -> None:
    """Progress line on stderr."""
    print(f"[gpu-bench {time.perf_counter() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def sync(device: str) -> None:
    """Wait for queued GPU work (no-op on CPU)."""
    if device == "cuda":
        torch.cuda.synchronize()


def measure_peak(out: dict, device: str, dtype: Any, s: dict) -> None:
    """Dense matmul rate (TFLOP/s) of ``gemm``^3 GEMMs after warm-up: the MFU denominator."""
    a, b = (torch.randn(s["gemm"], s["gemm"], device=device, dtype=dtype) for _ in range(2))
    a @ b  # warm-up (cuBLAS handle and heuristics)
    sync(device)
    started = time.perf_counter()
    for _ in range(s["gemm_repeats"]):
        a @ b
    sync(device)
    tflops = 2 * s["gemm"] ** 3 * s["gemm_repeats"] / (time.perf_counter() - started) / 1e12
    out.update(gemm=f"{s['gemm']}^3 {str(dtype).replace('torch.', '')}", matmul_tflops=round(tflops, 2))


def load_prompts(out: dict, state: dict, path: Path, s: dict) -> None:
    """Seeded random ids with the estimated token length of the first ``--prompts`` questions."""
    with path.open(encoding="utf-8") as lines:
        texts = [f"{INSTRUCTION}\n{json.loads(line)['question']}" for line in islice(lines, s["prompts"])]
    lengths = [TEMPLATE_TOKENS + math.ceil(len(text) / CHARS_PER_TOKEN) for text in texts]
    generator = torch.Generator().manual_seed(0)
    state["prompts"] = [torch.randint(0, state["config"]["bos_token_id"], (n,), generator=generator).tolist()
                        for n in lengths]
    out.update(file=str(path), count=len(lengths), mean_tokens=round(sum(lengths) / len(lengths), 1),
               max_tokens=max(lengths), rule=f"{TEMPLATE_TOKENS} + ceil(chars / {CHARS_PER_TOKEN})")


def build_model(out: dict, state: dict, device: str, dtype: Any) -> None:
    """Random-init Qwen2 causal LM built in ``dtype`` on ``device``; N = nn.Linear weights."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(Qwen2Config(**state["config"]), dtype=dtype)
    linear = [m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)]
    state.update(model=model, n_matmul=sum(linear))
    out.update(matmul_parameters=state["n_matmul"], parameters=sum(p.numel() for p in model.parameters()))


def decode_flops(prompt: int, new: int, state: dict) -> float:
    """FLOPs of ``new`` generated tokens after a ``prompt``-token prompt (docstring)."""
    attention = 4 * state["config"]["num_hidden_layers"] * state["config"]["hidden_size"]
    return new * 2 * state["n_matmul"] + attention * (new * prompt + new * (new + 1) / 2)


def left_pad(rows: list[list[int]], pad: int, device: str) -> dict:
    """Left-padded input ids and attention mask."""
    width = max(map(len, rows))
    ids = torch.tensor([[pad] * (width - len(row)) + row for row in rows], device=device)
    return {"input_ids": ids, "attention_mask": (ids != pad).long()}  # prompt ids are all < pad


def hf_generation(out: dict, state: dict, batch: int, new: int, device: str) -> None:
    """Batched greedy decoding of exactly ``new`` tokens per prompt (transformers, KV cache)."""
    model, config = state["model"], state["config"]
    prompts, pad = sorted(state["prompts"], key=len, reverse=True), config["bos_token_id"]
    kwargs = dict(do_sample=False, pad_token_id=pad, eos_token_id=config["eos_token_id"])
    out.update(batch=batch, max_new_tokens=new, prompts=0, generated_tokens=0, seconds=0.0,
               flops=0.0)
    model.eval()
    with torch.inference_mode():
        model.generate(**left_pad(prompts[:8], pad, device), max_new_tokens=4, min_new_tokens=4, **kwargs)
        for start in range(0, len(prompts), batch):
            chunk, inputs = prompts[start:start + batch], left_pad(prompts[start:start + batch], pad, device)
            started = time.perf_counter()
            ids = model.generate(**inputs, max_new_tokens=new, min_new_tokens=new, **kwargs)
            sync(device)
            out["seconds"] += time.perf_counter() - started
            steps = ids.shape[1] - inputs["input_ids"].shape[1]
            out["prompts"] += len(chunk)
            out["generated_tokens"] += steps * len(chunk)
            out["flops"] += sum(decode_flops(len(row), steps, state) for row in chunk)
            log(f"transformers: {out['prompts']}/{len(prompts)} prompts, {out['seconds']:.1f}s")


def lora_training(out: dict, state: dict, batch: int, seq: int, steps: int, device: str) -> None:
    """``steps`` timed LoRA r8 steps (forward, backward, AdamW) after two warm-up steps."""
    from peft import LoraConfig, get_peft_model

    config = state["config"]
    state["model"].train()
    peft = get_peft_model(state["model"], LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                     target_modules="all-linear", task_type="CAUSAL_LM"))
    params = [p for p in peft.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, config["bos_token_id"], (batch, seq), generator=generator).to(device)
    out.update(batch=batch, seq_len=seq, gradient_checkpointing=False, steps=0, tokens=0, seconds=0.0,
               trainable_parameters=sum(p.numel() for p in params))
    attention = 4 * config["num_hidden_layers"] * config["hidden_size"] * seq

    def step() -> float:
        loss = peft(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())  # waits for the step

    step(), step()
    for index in range(steps):
        started = time.perf_counter()
        out["last_loss"] = round(step(), 4)
        out["seconds"] += time.perf_counter() - started
        out["steps"], out["tokens"] = index + 1, (index + 1) * batch * seq
        out["flops"] = 2 * (2 * state["n_matmul"] + attention) * out["tokens"]
        if index % 10 == 9:
            log(f"lora: {index + 1}/{steps} steps, {out['seconds']:.1f}s")


def vllm_generation(out: dict, state: dict, new: int) -> None:
    """The same prompt ids through vLLM, dummy (random) weights, a folder with only config.json."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engine in this process
    from vllm import LLM, SamplingParams

    config = {**state["config"], "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
              "torch_dtype": "bfloat16", "hidden_act": "silu", "use_sliding_window": False}
    folder = tempfile.mkdtemp(prefix="qwen25-7b-config-")
    Path(folder, "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    started = time.perf_counter()
    llm = LLM(model=folder, load_format="dummy", skip_tokenizer_init=True, dtype="bfloat16",
              max_model_len=2048, gpu_memory_utilization=0.85, enable_prefix_caching=False, seed=0)
    out["startup_seconds"] = round(time.perf_counter() - started, 1)
    log(f"vllm: engine up in {out['startup_seconds']}s")
    inputs = [{"prompt_token_ids": ids} for ids in state["prompts"]]
    kwargs = dict(temperature=0.0, ignore_eos=True, detokenize=False)
    llm.generate(inputs[:8], SamplingParams(max_tokens=4, min_tokens=4, **kwargs), use_tqdm=False)
    started = time.perf_counter()
    outputs = llm.generate(inputs, SamplingParams(max_tokens=new, min_tokens=new, **kwargs), use_tqdm=False)
    out["seconds"] = time.perf_counter() - started
    counts = [len(o.outputs[0].token_ids) for o in outputs]
    flops = sum(decode_flops(len(i), n, state) for i, n in zip(state["prompts"], counts, strict=True))
    out.update(prompts=len(counts), max_new_tokens=new, generated_tokens=sum(counts), flops=flops)


def run_phase(result: dict, name: str, cap_s: float, fn: Callable[[dict], None]) -> None:
    """Run ``fn(out)`` under min(cap, budget left); record errors and peak memory in ``out``."""
    out: dict = result.setdefault(name, {})
    cap = min(cap_s, result["budget_s"] - (time.perf_counter() - STARTED))
    if cap < 10:
        out["error"] = "skipped: time budget spent"
        return
    log(f"{name}: start (cap {cap:.0f}s)")

    def timeout(signum: int, frame: Any) -> None:
        raise TimeoutError(f"{name}: phase time cap of {cap:.0f}s reached")

    if result["gpu"]:
        torch.cuda.reset_peak_memory_stats()
    signal.signal(signal.SIGALRM, timeout)
    signal.alarm(int(cap))
    started = time.perf_counter()
    try:
        fn(out)
    except Exception as error:  # noqa: BLE001 - the JSON line must come out whatever fails
        traceback.print_exc(file=sys.stderr)
        out["error"] = f"{type(error).__name__}: {error}"[:600]
    finally:
        signal.alarm(0)
        out["phase_seconds"] = round(time.perf_counter() - started, 1)
        if result["gpu"]:
            out["max_memory_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)


def emit(result: dict) -> None:
    """Tokens/s, TFLOP/s and MFU (vs the measured matmul peak) per phase, peak memory; print."""
    peak = result.get("peak", {}).get("matmul_tflops")
    for name, key in (("transformers_generation", "generated_tokens"), ("lora", "tokens"),
                      ("vllm", "generated_tokens")):
        out = result.get(name)
        if out and out.get("seconds"):
            seconds, tflops = out["seconds"], out.pop("flops", 0.0) / out["seconds"] / 1e12
            out.update(seconds=round(seconds, 3), tokens_per_s=round(out[key] / seconds, 1),
                       tflops=round(tflops, 2), mfu=round(tflops / peak, 4) if peak else None)
    memory = [p.get("max_memory_allocated_gib") for p in result.values() if isinstance(p, dict)]
    result["max_memory_allocated_gib"] = max(filter(None, memory), default=None)
    if not result["gpu"]:
        result["note"] = "no CUDA GPU here: CPU smoke run of the same code; run on a GPU box for figures"
    print(json.dumps({**result, "total_seconds": round(time.perf_counter() - STARTED, 1)}), flush=True)


def parse_args() -> argparse.Namespace:
    """CLI; unset sizes take the GPU or CPU-smoke defaults."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    for name, value in GPU_SIZES.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                            help=f"default {value} on GPU, {CPU_SIZES[name]} on CPU")
    parser.add_argument("--prompts-file", type=Path, default=GSM8K, help="GSM8K test.jsonl")
    parser.add_argument("--budget-s", type=float, default=525.0, help="time budget of the phases (s)")
    return parser.parse_args()


def main() -> None:
    """Run the phases in order (each failure recorded, none fatal) and print one JSON line."""
    args = parse_args()
    gpu = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if gpu else ("cpu", torch.float32)
    s = {k: getattr(args, k) or v for k, v in (GPU_SIZES if gpu else CPU_SIZES).items()}
    state: dict = {"config": QWEN25_7B if gpu else CPU_SMOKE}
    result: dict = {
        "bench": "gpu", "gpu": gpu, "budget_s": args.budget_s, "dtype": str(dtype).replace("torch.", ""),
        "device": torch.cuda.get_device_name(0) if gpu else "cpu (scaled-down config, not GPU figures)",
        "model": ("Qwen2.5-7B-Instruct architecture" if gpu else "Qwen2 smoke config") + ", random init"}
    try:
        run_phase(result, "peak", 60, lambda out: measure_peak(out, device, dtype, s))
        run_phase(result, "prompts", 30, lambda out: load_prompts(out, state, args.prompts_file, s))
        run_phase(result, "model_build", 150, lambda out: build_model(out, state, device, dtype))
        run_phase(result, "transformers_generation", 200,
                  lambda out: hf_generation(out, state, s["gen_batch"], s["max_new_tokens"], device))
        run_phase(result, "lora", 150, lambda out: lora_training(
            out, state, s["lora_batch"], s["lora_seq"], s["lora_steps"], device))
        state.pop("model", None)
        gc.collect()
        if gpu and importlib.util.find_spec("vllm"):
            torch.cuda.empty_cache()
            run_phase(result, "vllm", 1e9, lambda out: vllm_generation(out, state, s["max_new_tokens"]))
        else:
            result.update(vllm=None, vllm_unavailable="vllm is not installed" if gpu else "no CUDA GPU")
    finally:
        emit(result)
    if "vllm" in sys.modules:
        os._exit(0)  # vLLM's engine teardown can hang once the line is out


if __name__ == "__main__":
    main()
