"""Data-parallel fine-tuning under ``accelerate launch``: who this process is, and how to relaunch.

With ``finetune.num_processes: N > 1`` the ``tokenskip finetune`` command re-executes itself as
``python -m accelerate.commands.launch --config_file <cfg> --num_processes N -m tokenskip finetune ...``
(the config comes from the stage's ``--accelerate-config`` option, a path in dvc.yaml). The N
workers see ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` in their environment; the transformers
``Trainer`` wraps the model in DDP, and only rank 0 writes the model, the report and checkpoints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.net import free_port

CPU_CONFIG = "multi-cpu.yaml"
GPU_CONFIG = "multi-gpu.yaml"


def world_size() -> int:
    """Number of processes of this run (``WORLD_SIZE`` set by the launcher; 1 when not launched)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """Global rank of this process (0 when not launched)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """Rank of this process on its machine (its GPU index under multi-GPU)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_launched_worker() -> bool:
    """True inside a process started by ``accelerate launch``/``torchrun`` with more than one process."""
    return world_size() > 1


def threads_per_process(threads: int, processes: int) -> int:
    """CPU threads each process gets: ``threads // processes``, at least 1."""
    return max(1, threads // max(1, processes))


def check_batch_split(batch_size: int, processes: int, where: str = "finetune.batch_size") -> None:
    """The global batch must split evenly over the processes (each gets ``batch_size / processes``)."""
    if batch_size % processes:
        raise TokenSkipError(
            f"{where} ({batch_size}) must be a multiple of the number of processes ({processes}); "
            "move gradient accumulation into batch_size to keep the same global batch"
        )


def accelerate_config(path: Path, cuda: bool) -> Path:
    """The accelerate config: ``path`` itself, or in a folder multi-gpu.yaml / multi-cpu.yaml by device."""
    folder = path.is_dir() or not path.suffix  # a missing folder is named with the file it lacks
    chosen = path / (GPU_CONFIG if cuda else CPU_CONFIG) if folder else path
    if not chosen.is_file():
        raise TokenSkipError(
            f"{chosen}: accelerate config not found (finetune.num_processes > 1 launches the stage "
            "with it; see infra/accelerate/ or pass --accelerate-config)"
        )
    return chosen


def launch_command(config: Path, processes: int, threads: int, module_args: list[str]) -> list[str]:
    """``python -m accelerate.commands.launch ... -m tokenskip <module_args>`` for N local processes."""
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(config),
        "--num_processes", str(processes),
        "--num_machines", "1",
        "--num_cpu_threads_per_process", str(threads),
        "--main_process_port", str(free_port()),
        "-m", "tokenskip", *module_args,
    ]


def _die_with_parent() -> None:
    """In the launcher (Linux): SIGTERM when the stage process dies, even by SIGKILL; torchrun then
    stops its workers, so a killed stage leaves no training processes behind."""
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def relaunch(config: Path, processes: int, threads: int, module_args: list[str]) -> None:
    """Run ``tokenskip <module_args>`` as ``processes`` data-parallel workers; a failure is one error."""
    command = launch_command(config, processes, threads, module_args)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    guard = _die_with_parent if sys.platform.startswith("linux") else None
    code = subprocess.run(command, env=env, check=False, preexec_fn=guard).returncode
    if code != 0:
        raise TokenSkipError(
            f"{config}: accelerate launch of {processes} processes exited with code {code} (worker log above)"
        )


def barrier() -> None:
    """Wait for every process of the run (no-op when not distributed)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def describe() -> dict[str, object]:
    """What the report records about the process group: size, backend, accelerate's distributed type."""
    import torch.distributed as dist

    info: dict[str, object] = {"world_size": world_size(), "backend": None, "type": "NO"}
    if dist.is_available() and dist.is_initialized():
        from accelerate import PartialState

        info["backend"] = str(dist.get_backend())
        info["type"] = str(PartialState().distributed_type.value)
    return info
