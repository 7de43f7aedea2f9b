"""Greedy CoT generation with vLLM (``generate.backend: vllm``), the engine of the reference code.

vLLM batches continuously, so its outputs need not be byte-identical to the transformers
backend's (other kernels, bf16): its checkpoint fingerprint therefore differs. Prompts go in as
token ids from our tokenizer (no special tokens added) and outputs are counted and decoded the same
way as :func:`tokenskip.core.decoding.generate_greedy` (tokens before the first EOS). Work is fed in
the shards of :func:`tokenskip.generate.ray_engine.plan_shards`, each checkpointed when finished.
vLLM is imported inside functions only; it is not a dependency of this package.
"""

from __future__ import annotations

import time
from typing import Any

from tokenskip.core.decoding import Generation, greedy_settings
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.hf import load_generation_config
from tokenskip.core.params import GenerateParams
from tokenskip.core.progress import progress
from tokenskip.generate.checkpoint import Checkpoint
from tokenskip.generate.protocol import Decoded
from tokenskip.generate.ray_engine import plan_shards


def require_vllm() -> Any:
    """The ``vllm`` module, or a one-line error naming the param that asked for it."""
    try:
        import vllm
    except ImportError as exc:
        raise TokenSkipError(
            f"generate.backend=vllm: cannot import vllm ({exc}); install it on a CUDA machine "
            "(pip install vllm) or set generate.backend to transformers or ray"
        ) from None
    return vllm


def _to_generation(token_ids: list[int], eos_ids: list[int], tokenizer: Any) -> Generation:
    count = next((n for n, token in enumerate(token_ids) if token in eos_ids), len(token_ids))
    text = tokenizer.decode(token_ids[:count], skip_special_tokens=True)
    return Generation(text=text.strip(), new_tokens=count)


def decode_vllm(name: str, revision: str | None, tokenizer: Any, prompts: list[str], gen: GenerateParams,
                checkpoint: Checkpoint, repetition_penalty: float = 1.0) -> Decoded:
    """Greedy-decode ``prompts`` with vLLM; returns :class:`~tokenskip.generate.protocol.Decoded`."""
    vllm = require_vllm()
    checkpoint.start()
    resumed, results = len(checkpoint.done), dict(checkpoint.done)
    shards = plan_shards(prompts, gen.batch_size, gen.shard_size)
    pending = [s for s in shards if not all(i in results for i in s.indices)]
    info: dict[str, Any] = {"shards": len(shards), "shards_resumed": len(shards) - len(pending),
                            "vllm_version": getattr(vllm, "__version__", None)}
    seconds = previous = checkpoint.seconds
    if pending:
        llm = vllm.LLM(model=name, revision=revision, tokenizer=name, tokenizer_revision=revision,
                       seed=0, trust_remote_code=False)
        settings = greedy_settings(load_generation_config(name, revision), tokenizer, gen.max_new_tokens,
                                   repetition_penalty)
        eos_ids = settings["eos_token_ids"]
        sampling = vllm.SamplingParams(temperature=0.0, max_tokens=settings["max_new_tokens"],
                                       repetition_penalty=settings["repetition_penalty"],
                                       stop_token_ids=eos_ids, skip_special_tokens=True)
        bar = progress(total=sum(len(s.indices) for s in pending), desc="generate (vllm)", unit="q")
        started = time.perf_counter()
        for shard in pending:
            inputs = [{"prompt_token_ids": tokenizer(prompts[i], add_special_tokens=False)["input_ids"]}
                      for i in shard.indices]
            outputs = llm.generate(inputs, sampling, use_tqdm=False)
            generations = [_to_generation(list(o.outputs[0].token_ids), eos_ids, tokenizer) for o in outputs]
            seconds = previous + time.perf_counter() - started
            checkpoint.append(shard.indices, generations, seconds)
            results.update(zip(shard.indices, generations, strict=True))
            bar.update(len(shard.indices))
        bar.close()
    return Decoded([results[i] for i in range(len(prompts))], seconds, resumed, info)
