"""finetune with 1 vs N data-parallel processes (accelerate launch, gloo on CPU), same global batch.

Prints ONE JSON line: training steps/s of each run (the Trainer loop, from reports' ``seconds``),
the whole command's wall time (process start, model load, launcher and rendezvous included), the
threads each process got (finetune.threads // N) and the largest per-step loss gap between the runs.
Base model: --base (a HF folder, e.g. models/base) or a tiny bootstrap model trained here. On a
2-core machine two processes with one thread each compete for the same cores as one process with
two threads: the gain is bounded (at best what two single-threaded GEMMs gain over one two-threaded
GEMM, minus the all-reduce), so expect ~1x; the figures are indicative on a shared CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from tiny_inputs import synthetic_problems, train_tiny_base

from tokenskip.core.params import DEFAULT_INSTRUCTION, load_params


def write_samples(base: Path, path: Path, count: int) -> None:
    """Sample records shaped like prune's: prompt at ratio g, completion cut to about g of the words."""
    from tokenskip.core.hf import load_tokenizer
    from tokenskip.core.prompts import build_prompt, format_completion

    tokenizer, rng = load_tokenizer(str(base)), random.Random(0)
    with path.open("w", encoding="utf-8") as handle:
        for problem in synthetic_problems(7, count):
            g = rng.choice([0.5, 0.7, 1.0])
            words = [w for w in problem.solution.split() if g == 1.0 or rng.random() < g]
            prompt = build_prompt(tokenizer, problem.question, DEFAULT_INSTRUCTION, g)
            completion = format_completion(" ".join(words), problem.gold)
            record = {"id": problem.id, "ratio": g, "prompt": prompt, "completion": completion}
            handle.write(json.dumps(record) + "\n")


def run(base: Path, tmp: Path, settings: dict, processes: int) -> dict:
    """One ``tokenskip finetune`` command with ``num_processes``; its report plus the wall time."""
    folder = Path(tempfile.mkdtemp(prefix=f"p{processes}-", dir=tmp))
    finetune = {**settings, "num_processes": processes}
    (folder / "params.yaml").write_text(yaml.safe_dump({"finetune": finetune}))
    command = [sys.executable, "-m", "tokenskip", "finetune", "--base", str(base),
               "--samples", str(tmp / "samples.jsonl"), "--out", str(folder / "out"),
               "--checkpoints", str(folder / "ckpt"), "--report", str(folder / "finetune.json"),
               "--params", str(folder / "params.yaml"),
               "--accelerate-config", str(Path(__file__).resolve().parents[1] / "infra" / "accelerate")]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "TQDM_DISABLE": "1"})
    report = json.loads((folder / "finetune.json").read_text())
    report["wall_s"] = round(time.perf_counter() - started, 2)
    return report


def main() -> None:
    """Run 1 and N processes on the same samples and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=Path, default=None, help="base model folder (default: tiny bootstrap)")
    parser.add_argument("--n", type=int, default=128, help="training samples")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternating; fastest counts")
    args = parser.parse_args()
    settings = load_params("params.yaml").finetune.model_dump()
    settings.update(epochs=args.epochs, save_steps=10_000, logging_steps=1, merge=False)
    with tempfile.TemporaryDirectory(prefix="bench-ft-mp-") as name:
        tmp = Path(name)
        base = args.base
        if base is None:
            base = train_tiny_base(tmp / "base", DEFAULT_INSTRUCTION)
        write_samples(base, tmp / "samples.jsonl", args.n)
        runs: dict[int, list[dict]] = {1: [], args.processes: []}
        for _ in range(args.repeats):
            for processes in runs:
                runs[processes].append(run(base, tmp, settings, processes))
    one = min(runs[1], key=lambda r: r["seconds"])
    many = min(runs[args.processes], key=lambda r: r["seconds"])
    figures = {}
    for key, report in (("one", one), ("many", many)):
        figures[key] = {
            "processes": report["num_processes"], "threads_per_process": report["threads_per_process"],
            "per_device_batch": report["per_device_batch_size"], "train_s": report["seconds"],
            "steps_per_s": round(report["steps"] / report["seconds"], 3), "wall_s": report["wall_s"],
            "train_s_all": [r["seconds"] for r in runs[report["num_processes"]]],
        }
    pairs = zip(one["loss_history"], many["loss_history"], strict=True)
    gap = max(abs(a["loss"] - b["loss"]) for a, b in pairs)
    print(json.dumps({
        "bench": "finetune_multiprocess", "base": str(args.base or "tiny bootstrap"), "samples": args.n,
        "steps": one["steps"], "global_batch": settings["batch_size"], "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        **figures, "speedup_train": round(figures["one"]["train_s"] / figures["many"]["train_s"], 2),
        "speedup_wall": round(figures["one"]["wall_s"] / figures["many"]["wall_s"], 2),
        "max_loss_gap": gap, "distributed": many["distributed"],
        "note": "2 shared CPU cores: 2 processes x 1 thread vs 1 x 2 threads, gain bounded; indicative",
    }))


if __name__ == "__main__":
    main()
