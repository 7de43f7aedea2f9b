"""Data-parallel training of the bootstrap model: ``num_processes`` CPU processes, gloo all-reduce.

On a small CPU, one thread per process trains faster than the same threads inside one process
(the bootstrap model's matrices are too small to split well across threads): on 2 cores,
``bench/bootstrap_processes.py`` measured 29.0k tokens/s with 2 processes x 1 thread against
24.8k with 1 process x 2 threads (global batch 16, 400 steps, process start included).
No process builds a model: each receives the parent's freshly initialised one, runs
:func:`~tokenskip.bootstrap.train.train_steps` on its rows of each global batch and sums gradients
(scaled by its share of labeled positions) with the others, so every step equals the one-process
step on the same global batch up to float summation order. Rank 0 hands back the weights.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tokenskip.bootstrap.train import TrainResult, summarize, train_steps
from tokenskip.params import BaseModelParams


def sum_over_processes(model: Any, loss: float, stop: bool) -> tuple[float, bool]:
    """All-reduce (sum) every gradient, the scaled loss and the stop flag in one flat tensor."""
    import torch
    import torch.distributed as dist

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads] + [torch.tensor([loss, float(stop)])])
    dist.all_reduce(flat)
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()
    return float(flat[-2]), bool(flat[-1] > 0)


def _worker(
    rank: int, world: int, store: str, model: Any, input_ids: Any, labels: Any,
    params: BaseModelParams, on_log: Callable[[int, float, float], None] | None, out: str,
    loss_weights: Any | None,
) -> None:
    """One process: join the gloo group, train its share, rank 0 saves weights and result.

    ``model`` arrives in shared memory (torch pickles tensors that way), so each process trains
    a private copy: updating the shared one would apply every step once per process.
    """
    import copy

    import torch
    import torch.distributed as dist

    model = copy.deepcopy(model)
    torch.set_num_threads(max(1, params.threads // world))
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        result = train_steps(
            model, input_ids, labels, params, on_log, sum_over_processes, rank, world, loss_weights
        )
        if rank == 0:
            torch.save({"state": model.state_dict(), "result": dataclasses.asdict(result)}, out)
    finally:
        dist.destroy_process_group()


def train_data_parallel(
    model: Any,
    input_ids: Any,
    labels: Any,
    params: BaseModelParams,
    on_log: Callable[[int, float, float], None] | None = None,
    loss_weights: Any | None = None,
) -> TrainResult:
    """Train ``model`` in place with ``params.num_processes`` spawned processes.

    ``train_seconds`` and ``tokens_per_s`` are the parent's wall clock, process start included.
    """
    import torch
    import torch.multiprocessing as mp

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tokenskip-ddp-") as tmp:
        store, out = Path(tmp) / "store", Path(tmp) / "rank0.pt"
        args = (
            params.num_processes, str(store), model, input_ids, labels, params, on_log, str(out), loss_weights
        )
        mp.start_processes(_worker, args=args, nprocs=params.num_processes, start_method="spawn")
        saved = torch.load(out, weights_only=True)
    model.load_state_dict(saved["state"])
    model.eval()
    done = saved["result"]
    return summarize(done["losses"], done["tokens"], time.perf_counter() - started, done["stopped_by"])
