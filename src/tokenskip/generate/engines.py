"""The three decoding engines of ``generate.backend`` behind one protocol.

Every engine takes the same inputs (the prompts and the stage's :class:`Checkpoint`) and returns
the same :class:`~tokenskip.generate.protocol.Decoded`: generations in input order, decoding
seconds summed over resumed runs, how many prompts came from the checkpoint, and engine facts
for the report.

- ``transformers``: batched greedy decoding in this process (:func:`decode_transformers`);
- ``ray``: the same batches sharded over Ray workers, byte-identical outputs (``ray_engine``);
- ``vllm``: vLLM's continuous batching on a GPU (``vllm_engine``); other kernels, so its
  checkpoints are its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tokenskip.core.decoding import (
    Generation,
    check_prompt_lengths,
    generate_greedy,
    override_repetition_penalty,
)
from tokenskip.core.params import GenerateParams
from tokenskip.generate.checkpoint import Checkpoint, model_fingerprint
from tokenskip.generate.protocol import Decoded, Engine
from tokenskip.generate.ray_engine import decode_ray
from tokenskip.generate.vllm_engine import decode_vllm, require_vllm


def decode_transformers(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    batch_size: int,
    max_new_tokens: int,
    checkpoint: Checkpoint,
    on_batch: Callable[[list[int]], None] | None = None,
) -> Decoded:
    """Batched greedy decoding in this process, each finished batch appended to ``checkpoint``."""
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
    return Decoded(generations, previous + seconds, resumed, {})


class TransformersEngine:
    """``generate.backend: transformers``: the model loaded in this process."""

    def __init__(
        self, name: str, revision: str | None, gen: GenerateParams, repetition_penalty: float
    ) -> None:
        import torch

        from tokenskip.core.hf import load_causal_lm, pick_device

        device = pick_device()
        if device == "cpu":
            torch.set_num_threads(gen.threads)
        self.name, self.revision, self.gen = name, revision, gen
        model, self.tokenizer = load_causal_lm(name, revision, device)
        self.model = override_repetition_penalty(model, repetition_penalty)

    def identity(self) -> dict[str, Any]:
        """The model's files; checkpoints are shared with the Ray engine (same batches)."""
        return model_fingerprint(self.name, self.revision)

    def decode(self, prompts: list[str], checkpoint: Checkpoint) -> Decoded:
        """See :func:`decode_transformers`."""
        return decode_transformers(self.model, self.tokenizer, prompts, self.gen.batch_size,
                                   self.gen.max_new_tokens, checkpoint)


def check_prompts(name: str, revision: str | None, tokenizer: Any, prompts: list[str]) -> None:
    """Refuse a prompt longer than the model's context (from its config) before any worker starts;
    the transformers engine's :func:`generate_greedy` checks the same in this process."""
    from tokenskip.core.hf import load_context_length

    check_prompt_lengths(tokenizer, prompts, load_context_length(name, revision, tokenizer))


class RayEngine:
    """``generate.backend: ray``: the workers load the model; this process only tokenizes."""

    def __init__(
        self, name: str, revision: str | None, gen: GenerateParams, repetition_penalty: float
    ) -> None:
        from tokenskip.core.hf import load_tokenizer

        self.name, self.revision, self.gen = name, revision, gen
        self.repetition_penalty = repetition_penalty
        self.tokenizer = load_tokenizer(name, revision)

    def identity(self) -> dict[str, Any]:
        """The model's files, as for the transformers engine (identical batches and outputs)."""
        return model_fingerprint(self.name, self.revision)

    def decode(self, prompts: list[str], checkpoint: Checkpoint) -> Decoded:
        """Shards over Ray workers; the per-process details stay out of the report."""
        check_prompts(self.name, self.revision, self.tokenizer, prompts)
        decoded = decode_ray(self.name, self.revision, prompts, self.gen, checkpoint, self.repetition_penalty)
        decoded.info.pop("processes", None)
        return decoded


class VllmEngine:
    """``generate.backend: vllm``: vLLM loads the model on the GPU."""

    def __init__(
        self, name: str, revision: str | None, gen: GenerateParams, repetition_penalty: float
    ) -> None:
        from tokenskip.core.hf import load_tokenizer

        require_vllm()
        self.name, self.revision, self.gen = name, revision, gen
        self.repetition_penalty = repetition_penalty
        self.tokenizer = load_tokenizer(name, revision)

    def identity(self) -> dict[str, Any]:
        """Other kernels: its outputs may differ, so its checkpoints are its own."""
        return {**model_fingerprint(self.name, self.revision), "engine": "vllm"}

    def decode(self, prompts: list[str], checkpoint: Checkpoint) -> Decoded:
        """See :func:`tokenskip.generate.vllm_engine.decode_vllm`."""
        check_prompts(self.name, self.revision, self.tokenizer, prompts)
        return decode_vllm(self.name, self.revision, self.tokenizer, prompts, self.gen, checkpoint,
                           self.repetition_penalty)


ENGINES: dict[str, type[TransformersEngine] | type[RayEngine] | type[VllmEngine]] = {
    "transformers": TransformersEngine,
    "ray": RayEngine,
    "vllm": VllmEngine,
}


def open_engine(name: str, revision: str | None, gen: GenerateParams, repetition_penalty: float) -> Engine:
    """The engine of ``gen.backend`` for the model ``name`` at ``revision``; every engine decodes
    greedily with the given ``repetition_penalty`` (see :func:`~tokenskip.core.decoding.greedy_settings`)."""
    return ENGINES[gen.backend](name, revision, gen, repetition_penalty)
