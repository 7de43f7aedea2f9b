"""GPU figures for the paper profile: a randomly initialised Qwen2.5-1.5B (config only, no weights),
one LoRA training step (r=8, all linear layers) and batched greedy generation, in bf16.

Prints ONE JSON line: the card's measured dense bf16 matmul rate (TFLOP/s, 8192^3 GEMMs) and
device-to-device copy bandwidth, LoRA training tokens/s and MFU, generation tokens/s, MFU and
the share of the measured copy bandwidth spent streaming the weights (decode is memory-bound).

FLOPs per token (N = matmul parameters incl. the LM head, L layers, d hidden, T sequence):
forward 2N + 4LdT (attention scores and values, causal mask not discounted); LoRA training =
forward + backward through activations only (frozen base weights need no weight gradients)
= 2 x forward; generation = 2N + 4Ld x (mean context).

Without CUDA the same code runs on a scaled-down config on the CPU (fp32) so the script is
exercised anywhere; the JSON then says ``"gpu": false`` and its figures are not GPU figures.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

QWEN25_15B = dict(  # Qwen/Qwen2.5-1.5B-Instruct config.json
    vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
    num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
    rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
)
CPU_SMOKE = dict(
    vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
)


def sync(device: str) -> None:
    """Wait for queued GPU work (no-op on CPU)."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def matmul_tflops(device: str, dtype: Any, size: int, repeats: int) -> float:
    """Measured dense matmul rate (TFLOP/s) of ``size`` x ``size`` GEMMs."""
    import torch

    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e12


def copy_gb_s(device: str, megabytes: int, repeats: int) -> float:
    """Device-to-device copy bandwidth (GB/s, bytes read + written)."""
    import torch

    src = torch.empty(megabytes * 2**20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    sync(device)
    return 2 * src.numel() * repeats / (time.perf_counter() - started) / 1e9


def build_model(config: dict, device: str, dtype: Any) -> tuple[Any, int]:
    """Random-init Qwen2 causal LM and its matmul parameter count (non-embedding + LM head)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**config)).to(device=device, dtype=dtype)
    embedding = model.get_input_embeddings().weight.numel()
    total = sum(p.numel() for p in model.parameters())  # tied: the embedding is the LM head GEMM
    return model, total if config["tie_word_embeddings"] else total - embedding


def lora_step(model: Any, config: dict, batch: int, seq: int, steps: int, device: str) -> dict:
    """Time LoRA training steps (forward, backward, AdamW) after one warm-up step."""
    import torch
    from peft import LoraConfig, get_peft_model

    peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                            task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in peft.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, config["vocab_size"], (batch, seq), device=device)
    timings = []
    for _ in range(steps + 1):
        sync(device)
        started = time.perf_counter()
        loss = peft(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        timings.append(time.perf_counter() - started)
    seconds = min(timings[1:])
    trainable = sum(p.numel() for p in peft.parameters() if p.requires_grad)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    peft.unload()
    return {"seconds": seconds, "tokens": batch * seq, "trainable": trainable, "peak_gib": peak}


def generation(model: Any, config: dict, batch: int, prompt: int, new: int, device: str) -> dict:
    """Batched greedy decoding of exactly ``new`` tokens per row (KV cache)."""
    import torch

    ids = torch.randint(0, config["vocab_size"], (batch, prompt), device=device)
    kwargs = dict(do_sample=False, min_new_tokens=new, max_new_tokens=new, pad_token_id=0)
    with torch.inference_mode():
        model.generate(ids[:, :8], **{**kwargs, "min_new_tokens": 4, "max_new_tokens": 4})
        sync(device)
        started = time.perf_counter()
        out = model.generate(ids, **kwargs)
        sync(device)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "tokens": batch * (out.shape[1] - prompt), "steps": out.shape[1] - prompt}


def main() -> None:
    """Measure and print one JSON line."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8, help="LoRA step batch (GPU)")
    parser.add_argument("--seq-len", type=int, default=512, help="LoRA step sequence length (GPU)")
    parser.add_argument("--steps", type=int, default=3, help="timed LoRA steps (best one kept)")
    parser.add_argument("--gen-batch", type=int, default=64)
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=256)
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if gpu else ("cpu", torch.float32)
    config = QWEN25_15B if gpu else CPU_SMOKE
    batch, seq = (args.batch_size, args.seq_len) if gpu else (2, 64)
    gen_batch, prompt, new = (args.gen_batch, args.prompt_len, args.new_tokens) if gpu else (4, 16, 16)
    peak = matmul_tflops(device, dtype, 8192 if gpu else 512, 50 if gpu else 5)
    bandwidth = copy_gb_s(device, 1024 if gpu else 64, 20 if gpu else 3)
    model, n_matmul = build_model(config, device, dtype)
    layers, hidden = config["num_hidden_layers"], config["hidden_size"]
    train = lora_step(model, config, batch, seq, args.steps, device)
    train_flops = 2 * (2 * n_matmul + 4 * layers * hidden * seq) * train["tokens"]
    train_tflops = train_flops / train["seconds"] / 1e12
    model.eval()
    gen = generation(model, config, gen_batch, prompt, new, device)
    mean_context = prompt + gen["steps"] / 2
    gen_tflops = (2 * n_matmul + 4 * layers * hidden * mean_context) * gen["tokens"] / gen["seconds"] / 1e12
    weight_bytes = n_matmul * (2 if gpu else 4)
    result = {
        "bench": "gpu", "gpu": gpu,
        "device": torch.cuda.get_device_name(0) if gpu else "cpu (scaled-down config, not GPU figures)",
        "model": "Qwen2.5-1.5B config, random init" if gpu else "Qwen2 smoke config, random init",
        "dtype": str(dtype).replace("torch.", ""), "matmul_parameters": n_matmul,
        "measured_matmul_tflops": round(peak, 2), "measured_copy_gb_s": round(bandwidth, 1),
        "lora_step": {"batch": batch, "seq_len": seq, "seconds": round(train["seconds"], 4),
                      "tokens_per_s": round(train["tokens"] / train["seconds"], 1),
                      "tflops": round(train_tflops, 2), "mfu": round(train_tflops / peak, 4),
                      "trainable_parameters": train["trainable"], "peak_memory_gib": train["peak_gib"]},
        "generation": {"batch": gen_batch, "prompt_len": prompt, "new_tokens": gen["steps"],
                       "seconds": round(gen["seconds"], 3),
                       "tokens_per_s": round(gen["tokens"] / gen["seconds"], 1),
                       "mfu": round(gen_tflops / peak, 4),
                       "weight_bandwidth_share": round(weight_bytes * gen["steps"] / gen["seconds"]
                                                       / 1e9 / bandwidth, 4)},
    }
    if not gpu:
        result["note"] = "no CUDA GPU here: CPU smoke run of the same code; run on a GPU box for figures"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
