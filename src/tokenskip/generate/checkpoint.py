"""The generate stage's resumable checkpoint: every finished batch is appended to a sidecar file
(JSON Lines, first line = a fingerprint of the model's file contents, prompts and decoding settings);
a re-run with the same fingerprint skips those batches, so the final file is identical to an
uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenskip.core.decoding import Generation
from tokenskip.core.io import folder_digests


def checkpoint_path(out: Path) -> Path:
    """The resumable sidecar next to the output file (``.cot.jsonl.checkpoint``)."""
    return out.parent / f".{out.name}.checkpoint"


def model_fingerprint(name: str, revision: str | None) -> dict[str, Any]:
    """Identity of a model: name, revision and, for a local folder, the sha256 of each of its files
    (by relative path; hidden names such as .cache/ skipped). Content, not sizes or mtimes: another
    model copied in at the same path with same-size files (or with preserved mtimes) is another model,
    and a touched but unchanged file is the same one."""
    files = folder_digests(name) if Path(name).is_dir() else {}
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
