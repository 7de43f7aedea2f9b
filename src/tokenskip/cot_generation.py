"""The generate stage's library: the target model's own CoTs on the training questions.

Decoding is batched greedy (:func:`tokenskip.generation.generate_greedy`) and resumable: every
finished batch is appended to a sidecar checkpoint (JSON Lines, first line = a fingerprint of
model, prompts and decoding settings); a re-run with the same fingerprint skips those batches, so
the final file is identical to an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tokenskip.data import Problem, answers_match, extract_prediction, split_cot
from tokenskip.errors import TokenSkipError
from tokenskip.generation import Generation, generate_greedy


def model_fingerprint(name: str, revision: str | None) -> dict[str, Any]:
    """Identity of a model: name, revision and, for a local folder, its files' sizes and mtimes."""
    folder = Path(name)
    files = {}
    if folder.is_dir():
        entries = sorted(p for p in folder.iterdir() if p.is_file())
        files = {p.name: [p.stat().st_size, int(p.stat().st_mtime)] for p in entries}
    return {"name": name, "revision": revision, "files": files}


def run_fingerprint(
    model_id: dict[str, Any], prompts: Sequence[str], batch_size: int, max_new_tokens: int
) -> str:
    """A hash of everything that determines the decoded batches."""
    digest = hashlib.sha256()
    digest.update(json.dumps([model_id, batch_size, max_new_tokens], sort_keys=True).encode())
    for prompt in prompts:
        digest.update(hashlib.sha256(prompt.encode()).digest())
    return digest.hexdigest()


class Checkpoint:
    """Append-only sidecar of finished batches; ignored (and replaced) when its fingerprint differs."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path, self.fingerprint = path, fingerprint
        self.done: dict[int, Generation] = {}
        self.seconds = 0.0
        if path.is_file():
            self._load()

    def _load(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            header = {}
        if header.get("fingerprint") != self.fingerprint:
            return
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                break  # a torn last line from a kill: that batch is decoded again
            for index, text, tokens in entry["batch"]:
                self.done[index] = Generation(text=text, new_tokens=tokens)
            self.seconds = entry["seconds"]

    def start(self) -> None:
        """Create the file with its header unless resuming a matching checkpoint."""
        if self.done:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"fingerprint": self.fingerprint}) + "\n", encoding="utf-8")

    def append(self, indices: list[int], generations: list[Generation], seconds: float) -> None:
        """Record one finished batch durably."""
        entry = {"batch": [[i, g.text, g.new_tokens] for i, g in zip(indices, generations, strict=True)],
                 "seconds": seconds}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def remove(self) -> None:
        """Delete the checkpoint once the final outputs are written."""
        self.path.unlink(missing_ok=True)


def decode_resumable(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    batch_size: int,
    max_new_tokens: int,
    checkpoint: Checkpoint,
    on_batch: Callable[[list[int]], None] | None = None,
) -> tuple[list[Generation], float, int]:
    """Decode with checkpointing; returns generations, total decoding seconds (over all runs)
    and how many prompts were taken from the checkpoint."""
    import time

    checkpoint.start()
    resumed = len(checkpoint.done)
    previous, started = checkpoint.seconds, time.perf_counter()

    def record(indices: list[int], generations: list[Generation]) -> None:
        checkpoint.append(indices, generations, previous + time.perf_counter() - started)
        if on_batch is not None:
            on_batch(indices)

    generations, seconds = generate_greedy(
        model, tokenizer, prompts, batch_size, max_new_tokens, desc="generate",
        done=checkpoint.done, on_batch=record,
    )
    return generations, previous + seconds, resumed


def cot_record(problem: Problem, generation: Generation, tokenizer: Any) -> dict[str, Any]:
    """The ``cot`` record of DESIGN.md for one problem and its decoded output."""
    cot, _ = split_cot(generation.text)
    prediction = extract_prediction(generation.text)
    return {
        "id": problem.id,
        "question": problem.question,
        "gold": problem.gold,
        "output": generation.text,
        "cot": cot,
        "prediction": prediction,
        "correct": answers_match(prediction, problem.gold),
        "cot_tokens": len(tokenizer(cot, add_special_tokens=False)["input_ids"]) if cot else 0,
    }


def keep_record(record: dict[str, Any], max_cot_tokens: int) -> bool:
    """Training CoTs: correct, non-empty, at most ``max_cot_tokens`` target tokens."""
    return bool(record["correct"]) and 0 < record["cot_tokens"] <= max_cot_tokens


def generate_report(records: Sequence[dict[str, Any]], kept: Sequence[dict[str, Any]],
                    generations: Sequence[Generation], seconds: float) -> dict[str, Any]:
    """``reports/generate.json``: n, accuracy, kept, mean_cot_tokens, tokens_per_s."""
    if not records:
        raise TokenSkipError("generate: no training questions")
    new_tokens = sum(g.new_tokens for g in generations)
    return {
        "n": len(records),
        "accuracy": round(sum(1 for r in records if r["correct"]) / len(records), 4),
        "kept": len(kept),
        "kept_share": round(len(kept) / len(records), 4),
        "mean_cot_tokens": round(statistics.fmean(r["cot_tokens"] for r in kept), 2) if kept else None,
        "mean_new_tokens": round(new_tokens / len(generations), 2),
        "new_tokens": new_tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(new_tokens / seconds, 1) if seconds > 0 else None,
    }
