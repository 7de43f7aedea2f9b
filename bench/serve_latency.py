"""Latency through the served path: `tokenskip serve` (transformers serve) asked with the `openai`
client, one request at a time, at ratio g (default 0.6) and without a ratio (the full CoT).

Prints ONE JSON line: mean seconds per request at g and without, their ratio, the completion-token
ratio (g vs none), the gap between the two ratios (target: within 0.05: the saved time is the saved
tokens), and the load average while it ran (the CPU is shared: figures are indicative). Requests
alternate question by question (none and g, next question), as evaluate's latency does, so a change
in load does not bias the ratio, with the order alternating; the first ``--warmup`` questions warm
the server up (a fresh transformers serve answers its first dozens of requests several times
slower) and are not counted. Serves MODEL (default models/tokenskip: finetune's output) with the
test questions and decoding budget of the repository's params.yaml, from a temporary serve cache.

    .venv/bin/python bench/serve_latency.py [MODEL] [--repo .] [--n 20] [--ratio 0.6] [--warmup 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

STARTUP_S = 600
TARGET_GAP = 0.05


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, repo: Path, port: int, folder: Path) -> subprocess.Popen:
    """`tokenskip serve MODEL` on ``port`` with its serve cache in ``folder``; returns once healthy."""
    env = {**os.environ, "TOKENSKIP_SERVE_CACHE": str(folder / "serve")}
    log = folder / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "tokenskip"), "serve", model, "--repo", str(repo),
             "--port", str(port), "--engine", "transformers"],
            cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise SystemExit(f"tokenskip serve did not start:\n{log.read_text()[-3000:]}") from None
            time.sleep(1)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def questions(repo: Path, n: int) -> tuple[list[str], int]:
    """The first ``n`` test questions of params.yaml's dataset and evaluate's max_new_tokens."""
    from tokenskip.core.params import load_params
    from tokenskip.core.problems import dataset_file, load_file

    params = load_params(repo / "params.yaml")
    path = dataset_file(params.data, repo / "data", "test")
    problems = load_file(params.data, path if path.is_absolute() else repo / path, "test")[:n]
    return [p.question for p in problems], params.evaluate.max_new_tokens


def measure(client, name: str, texts: list[str], ratio: float, budget: int, warmup: int) -> dict:
    """Per condition: each request's seconds and completion tokens. ``warmup`` questions first go
    through both conditions uncounted (the first requests of a fresh server run several times
    slower); then each question is asked in both, the order alternating (none first, then g first)."""
    conditions = {"none": None, f"{ratio:g}": ratio}
    seconds: dict[str, list[float]] = {key: [] for key in conditions}
    tokens: dict[str, list[float]] = {key: [] for key in conditions}
    for index, text in enumerate([*texts[:warmup], *texts]):
        keys = list(conditions) if index % 2 == 0 else list(reversed(conditions))
        for key in keys:
            value = conditions[key]
            extra = {} if value is None else {"chat_template_kwargs": {"ratio": value}}
            started = time.perf_counter()
            reply = client.chat.completions.create(model=name, messages=[{"role": "user", "content": text}],
                                                   max_tokens=budget, extra_body=extra)
            if index >= warmup:
                seconds[key].append(time.perf_counter() - started)
                tokens[key].append(reply.usage.completion_tokens)
    return {"seconds": seconds, "tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default="models/tokenskip", help="folder or models:/name@alias")
    parser.add_argument("--repo", type=Path, default=Path("."), help="repository root (params.yaml, data/)")
    parser.add_argument("--n", type=int, default=20, help="test questions")
    parser.add_argument("--ratio", type=float, default=0.6, help="the ratio g compared with none")
    parser.add_argument("--warmup", type=int, default=10, help="questions asked first, not counted")
    args = parser.parse_args()
    from openai import OpenAI

    repo = args.repo.resolve()
    texts, budget = questions(repo, args.n)
    folder, port = Path(tempfile.mkdtemp(prefix="bench-serve-")), free_port()
    model = args.model if args.model.startswith(("models:/", "runs:/")) else str(Path(args.model).resolve())
    name = "tokenskip" if not model.startswith("models:/") else model.split(":/", 1)[1].split("@")[0]
    load_before = os.getloadavg()[0]
    proc = start_server(model, repo, port, folder)
    try:
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=600)
        figures = measure(client, name, texts, args.ratio, budget, args.warmup)
    finally:
        stop(proc)
        shutil.rmtree(folder, ignore_errors=True)
    key = f"{args.ratio:g}"
    mean = {k: sum(v) / len(v) for k, v in figures["seconds"].items()}
    latency_ratio = mean[key] / mean["none"]
    token_ratio = sum(figures["tokens"][key]) / sum(figures["tokens"]["none"])
    print(json.dumps({
        "model": args.model, "engine": "transformers serve", "n": len(texts), "ratio": args.ratio,
        "latency_s": {k: round(v, 4) for k, v in mean.items()},
        "completion_tokens": {k: sum(v) for k, v in figures["tokens"].items()},
        "latency_ratio": round(latency_ratio, 4), "token_ratio": round(token_ratio, 4),
        "gap": round(abs(latency_ratio - token_ratio), 4),
        "within_target": abs(latency_ratio - token_ratio) <= TARGET_GAP,
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)], "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
