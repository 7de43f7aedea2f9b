"""Greedy CoT generation sharded over Ray workers (``generate.backend: ray``).

Each worker is a Ray actor holding one model replica (one GPU per worker when the cluster has
GPUs, else ``generate.threads`` torch threads on CPU). Shards are contiguous chunks of the
length-sorted order that :func:`tokenskip.core.decoding.generate_greedy` uses, cut on multiples of
``generate.batch_size``: every batch holds exactly the prompts of the single-process run, so the
outputs are the same; they are reassembled in input order. A shard whose worker dies is retried
on the restarted actor (``max_restarts`` / ``max_task_retries``); every finished shard is appended
to the stage's checkpoint, so a re-run resumes shard by shard (checkpoints of the transformers
backend and of this one are interchangeable: same fingerprint, same batches).

Cluster: ``RAY_ADDRESS`` (e.g. ``ray://head:10001`` or ``auto``) connects to a running cluster,
whose workers must have this package installed and see the model (a hub id or shared storage);
unset, ``ray.init`` starts a local cluster with ``num_cpus = generate.ray_workers`` and no
dashboard. Ray is imported inside functions only.
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenskip.core.decoding import Generation, length_order
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.params import GenerateParams
from tokenskip.core.progress import progress
from tokenskip.generate.checkpoint import Checkpoint
from tokenskip.generate.protocol import Decoded

LOCAL_OBJECT_STORE_BYTES = 128 * 1024**2  # results are short texts; model weights never travel
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TQDM_DISABLE", "CI")
KILL_SHARD_ENV, KILL_MARKER_ENV = "TOKENSKIP_RAY_KILL_SHARD", "TOKENSKIP_RAY_KILL_MARKER"


@dataclass(frozen=True)
class Shard:
    """One unit of work: its number and the prompt indices it decodes, in length-sorted order."""

    number: int
    indices: list[int]


def plan_shards(prompts: Sequence[str], batch_size: int, shard_size: int) -> list[Shard]:
    """Contiguous chunks of :func:`length_order`, ``shard_size`` rounded down to whole batches."""
    step = max(1, shard_size // batch_size) * batch_size
    order = length_order(prompts)
    return [Shard(n, order[start : start + step]) for n, start in enumerate(range(0, len(order), step))]


def _kill_hook(shard: int) -> Any:
    """Fault injection for tests: SIGKILL this worker after the first batch of shard
    ``$TOKENSKIP_RAY_KILL_SHARD``, once (the marker file ``$TOKENSKIP_RAY_KILL_MARKER`` records it)."""
    marker = os.environ.get(KILL_MARKER_ENV)
    if not marker or os.environ.get(KILL_SHARD_ENV) != str(shard) or Path(marker).exists():
        return None

    def kill(indices: list[int], generations: list[Generation]) -> None:
        Path(marker).write_text(str(os.getpid()), encoding="utf-8")
        os.kill(os.getpid(), signal.SIGKILL)

    return kill


class ShardWorker:
    """A Ray actor body: one model replica that decodes shards (wrapped by ``ray.remote`` at run time)."""

    def __init__(self, name: str, revision: str | None, threads: int, repetition_penalty: float) -> None:
        import torch

        from tokenskip.core.hf import load_causal_lm, pick_device

        device = pick_device()
        if device == "cpu":
            torch.set_num_threads(threads)
        from tokenskip.core.decoding import override_repetition_penalty

        model, self.tokenizer = load_causal_lm(name, revision, device)
        self.model = override_repetition_penalty(model, repetition_penalty)

    def ready(self) -> dict[str, Any]:
        """Where this replica runs: pid, device and torch threads."""
        import torch

        return {"pid": os.getpid(), "device": str(self.model.device), "threads": torch.get_num_threads()}

    def decode(self, shard: int, prompts: list[str], batch_size: int, max_new_tokens: int,
               done: dict[int, Generation]) -> tuple[list[Generation], int]:
        """Greedy-decode one shard (prompts in length order); returns generations and this pid."""
        from tokenskip.core.decoding import generate_greedy

        generations, _ = generate_greedy(self.model, self.tokenizer, prompts, batch_size, max_new_tokens,
                                         desc=f"shard {shard}", done=done, on_batch=_kill_hook(shard))
        return generations, os.getpid()


def connect(workers: int) -> bool:
    """Join ``$RAY_ADDRESS`` or start a local cluster of ``workers`` CPUs; True when started here."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False)
    else:
        # address="local": a new cluster even when `ray start` left one (or its stale address) here
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    return True


def start_workers(
    name: str, revision: str | None, gen: GenerateParams, count: int, repetition_penalty: float
) -> tuple[list, list]:
    """Up to ``count`` ShardWorker actors (restarted and their calls retried when a worker dies),
    one GPU each when the cluster has GPUs (then at most one per GPU); returns the handles and each
    replica's ready() info once the models are loaded."""
    import ray

    cluster_gpus = int(ray.cluster_resources().get("GPU", 0))
    gpus = 1 if cluster_gpus >= 1 else 0
    count = min(count, cluster_gpus) if gpus else count
    env = {key: os.environ[key] for key in os.environ if key in FORWARDED_ENV or key.startswith("TOKENSKIP_")}
    actor = ray.remote(ShardWorker).options(
        num_cpus=1, num_gpus=gpus, max_restarts=gen.ray_max_retries, max_task_retries=gen.ray_max_retries,
        runtime_env={"env_vars": env},
    )
    handles = [actor.remote(name, revision, gen.threads, repetition_penalty) for _ in range(count)]
    try:
        return handles, ray.get([h.ready.remote() for h in handles])
    except ray.exceptions.RayError as exc:
        cause = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise TokenSkipError(f"generate.backend=ray: a worker could not load model {name}: {cause}") from None


def _run_shards(handles: list, pending: list[Shard], prompts: list[str], gen: GenerateParams,
                checkpoint: Checkpoint, bar: Any) -> tuple[dict[int, Generation], float, dict[int, int]]:
    """Keep every worker busy with one shard at a time; checkpoint each finished shard.
    Returns index -> generation (checkpointed ones included), total decoding seconds and
    shard number -> pid of the process that finished it."""
    import ray
    from ray.exceptions import RayError

    queue, in_flight, finished_by = deque(pending), {}, {}
    results, seconds = dict(checkpoint.done), checkpoint.seconds
    previous, started = checkpoint.seconds, time.perf_counter()

    def submit(handle: Any) -> None:
        shard = queue.popleft()
        done = {n: checkpoint.done[i] for n, i in enumerate(shard.indices) if i in checkpoint.done}
        ref = handle.decode.remote(shard.number, [prompts[i] for i in shard.indices], gen.batch_size,
                                   gen.max_new_tokens, done)
        in_flight[ref] = (handle, shard)

    for handle in handles[: len(queue)]:
        submit(handle)
    while in_flight:
        [ref], _ = ray.wait(list(in_flight), num_returns=1)
        handle, shard = in_flight.pop(ref)
        try:
            generations, pid = ray.get(ref)
        except RayError as exc:
            raise TokenSkipError(
                f"generate.backend=ray: shard {shard.number} failed after generate.ray_max_retries="
                f"{gen.ray_max_retries} retries ({type(exc).__name__}); finished shards are checkpointed, "
                "re-run to resume"
            ) from None
        seconds = previous + time.perf_counter() - started
        checkpoint.append(shard.indices, generations, seconds)
        results.update(zip(shard.indices, generations, strict=True))
        finished_by[shard.number] = pid
        bar.update(len(shard.indices))
        if queue:
            submit(handle)
    return results, seconds, finished_by


def decode_ray(name: str, revision: str | None, prompts: list[str], gen: GenerateParams,
               checkpoint: Checkpoint, repetition_penalty: float = 1.0) -> Decoded:
    """Decode ``prompts`` over Ray workers; returns generations in input order, decoding seconds
    (over all runs, model loading excluded), prompts resumed from the checkpoint, and run info
    (``processes``: each replica's ready() and shard number -> pid that finished it)."""
    import ray

    checkpoint.start()
    resumed = len(checkpoint.done)
    shards = plan_shards(prompts, gen.batch_size, gen.shard_size)
    pending = [s for s in shards if not all(i in checkpoint.done for i in s.indices)]
    info: dict[str, Any] = {"shards": len(shards), "shards_resumed": len(shards) - len(pending),
                            "shard_size": len(shards[0].indices) if shards else 0, "workers": 0}
    if not pending:
        return Decoded([checkpoint.done[i] for i in range(len(prompts))], checkpoint.seconds, resumed, info)
    started_here = connect(gen.ray_workers)
    handles: list = []
    try:
        loading = time.perf_counter()
        handles, replicas = start_workers(name, revision, gen, min(gen.ray_workers, len(pending)),
                                          repetition_penalty)
        info |= {"workers": len(handles), "load_seconds": round(time.perf_counter() - loading, 2),
                 "devices": sorted({r["device"] for r in replicas}),
                 "threads_per_worker": sorted({r["threads"] for r in replicas})}
        bar = progress(total=len(prompts), initial=len(prompts) - sum(len(s.indices) for s in pending),
                       desc="generate (ray)", unit="q")
        results, seconds, finished_by = _run_shards(handles, pending, prompts, gen, checkpoint, bar)
        bar.close()
        info["processes"] = {"replicas": replicas, "finished_by_pid": finished_by}
    finally:
        for handle in handles:
            ray.kill(handle)
        if started_here:
            ray.shutdown()
    return Decoded([results[i] for i in range(len(prompts))], seconds, resumed, info)
