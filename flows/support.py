"""Pure helpers of the Prefect flow (flows/pipeline.py): which DVC stages to run (dvc.yaml's, in
its order: the one list of the stages), how to run ``dvc repro <stage>`` as a streamed,
time-limited subprocess, and what its output says.

Nothing here imports Prefect or MLflow, so it is testable without a server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenskip.core.errors import DETERMINISTIC_CODES, ExitCode, TokenSkipError
from tokenskip.core.io import read_yaml

TAIL_LINES = 30

_RAN = re.compile(r"^Running stage '([^']+)'")
_UNCHANGED = re.compile(r"^Stage '([^']+)' didn't change, skipping")
_RESTORED = re.compile(r"^Stage '([^']+)' is cached - skipping run, checking out outputs")
_EXPERIMENT = re.compile(r"^Reproducing experiment '([^']+)'")
_OVERRIDE = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*=.+$")
EXPERIMENT = "experiment"  # the task name of a run with overrides: one `dvc exp run` over the stages
# DVC exits 255 when a stage fails and names the command's own exit code in its error line:
# "ERROR: failed to reproduce 'prune': failed to run: tokenskip prune ..., exited with 2"
_STAGE_EXIT = re.compile(r"^ERROR: failed to reproduce '([^']+)': failed to run: .*, exited with (-?\d+)\s*$")
# DVC's own refusals of the project's files (dvc.yaml, params.yaml) or of the -S overrides: it
# exits 255 for them as for everything else; the same files fail the same way, so they are bad
# input (exit code 2, not retried). A lock or a crash says something else and stays transient.
_DVC_INPUT_ERROR = re.compile(
    r"^(?:ERROR: )?(?:unable to read: '[^']+', YAML file structure is corrupted"
    r"|'[^']+' is invalid\."
    r"|'[^']+' validation failed"
    r"|failed to parse '[^']+' in '[^']+'"
    r"|failed to reproduce '[^']+': Parameters .* are missing from '[^']+'"
    r"|Invalid `--set-param` value)"
)


class StageFailed(Exception):
    """A ``dvc repro <stage>`` that exited non-zero or ran past its time limit.

    ``exit_code`` is the stage command's own exit code; 2 when DVC itself refused the project's
    files or the overrides (:func:`dvc_input_error`); None when it timed out or DVC failed
    otherwise. It is ``transient`` unless that code says bad input (2), failed validation (3) or no
    champion (4): retrying would fail the same way, so the flow does not retry those.
    """

    def __init__(self, stage: str, reason: str, tail: Sequence[str], exit_code: int | None) -> None:
        self.stage = stage
        self.reason = reason
        self.tail = list(tail)
        self.exit_code = exit_code
        last = "\n".join(self.tail[-15:])
        super().__init__(f"stage {stage!r} {reason}; last output lines:\n{last}")

    @property
    def transient(self) -> bool:
        """True when a retry may pass: a crash, a timeout, a lock held by another DVC process."""
        return self.exit_code not in DETERMINISTIC_CODES


@dataclass(frozen=True)
class StageRun:
    """What one ``dvc repro <stage>`` did: its wall seconds and each stage's status."""

    stage: str
    seconds: float
    statuses: dict[str, str]
    attempts: int = 1
    experiment: str | None = None  # the DVC experiment's name (a run with overrides)

    @property
    def ran(self) -> bool:
        """True when DVC actually executed the stage's command (it was not up to date)."""
        return self.statuses.get(self.stage) == "ran"


def read_dvc_stages(repo: Path) -> list[str]:
    """The stage names declared in ``repo/dvc.yaml``, in file order: the stage graph's order
    (tests/pipeline/test_dvc_pipeline.py checks that each stage depends on the one before it)."""
    path = Path(repo) / "dvc.yaml"
    if not path.is_file():
        raise TokenSkipError(f"{path}: not found (is {repo} the repository root?)")
    doc = read_yaml(path) or {}  # bytes, YAML and duplicate keys: one line each
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, dict):
        raise TokenSkipError(f"{path}: stages: must be a mapping of stage names")
    return list(stages)


def plan_stages(available: Sequence[str], requested: Sequence[str] | None = None) -> list[str]:
    """The stages to run, in the order of ``available`` (dvc.yaml's, :func:`read_dvc_stages`).

    ``requested`` (None = all) limits the run; naming a stage that is not in dvc.yaml is an error.
    """
    known = list(available)
    if requested is not None:
        unknown = [s for s in requested if s not in known]
        if unknown:
            raise TokenSkipError(f"flow parameter stages: unknown stage(s) {unknown}; known: {known}")
    return [s for s in known if requested is None or s in requested]


def parse_repro_output(lines: Sequence[str]) -> dict[str, str]:
    """Per stage, what ``dvc repro`` did: ``ran``, ``unchanged`` or ``restored`` (from run-cache)."""
    statuses: dict[str, str] = {}
    for line in lines:
        text = line.strip()
        for pattern, status in ((_RAN, "ran"), (_UNCHANGED, "unchanged"), (_RESTORED, "restored")):
            match = pattern.match(text)
            if match:
                statuses[match.group(1)] = status
    return statuses


def stage_exit_code(lines: Sequence[str]) -> int | None:
    """The failed stage command's exit code, from DVC's ``failed to reproduce`` error line; None
    when DVC failed before or around the command (a lock, a missing dependency)."""
    for line in reversed(lines):
        match = _STAGE_EXIT.match(line.strip())
        if match:
            return int(match.group(2))
    return None


def dvc_input_error(lines: Sequence[str]) -> str | None:
    """DVC's first line refusing the project's files or the overrides (see ``_DVC_INPUT_ERROR``),
    or None when DVC failed otherwise."""
    return next((line.strip() for line in lines if _DVC_INPUT_ERROR.match(line.strip())), None)


def check_overrides(overrides: Sequence[str]) -> list[str]:
    """The ``-S`` overrides as given, each ``key.path=value`` (DVC's syntax); else one error."""
    bad = [item for item in overrides if not _OVERRIDE.match(item)]
    if bad:
        raise TokenSkipError(f"-S {bad[0]!r}: expected key=value, e.g. -S prune.ratios='[0.6]'")
    return list(overrides)


def experiment_name(lines: Sequence[str]) -> str | None:
    """The name DVC gave the experiment (``Reproducing experiment 'name'``), if it printed one."""
    for line in lines:
        match = _EXPERIMENT.match(line.strip())
        if match:
            return match.group(1)
    return None


def dvc_command(stages: Sequence[str], overrides: Sequence[str] = ()) -> list[str]:
    """``dvc repro <stages>``; with overrides, ``dvc exp run -S k=v ... <stages>``: DVC applies them
    to params.yaml itself and records the run as an experiment (``dvc exp show``)."""
    if not overrides:
        return [tool_path("dvc"), "repro", *stages]
    return [tool_path("dvc"), "exp", "run", *[arg for item in overrides for arg in ("-S", item)], *stages]


def tool_path(name: str) -> str:
    """The executable ``name`` next to this Python (the project's venv), else from PATH."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def stage_env(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The stage subprocess environment: ``base`` + ``extra``, this venv's bin first on PATH.

    Putting the venv first means dvc.yaml's ``tokenskip ...`` commands run the same install
    as the flow, whoever starts it (make, a Prefect worker, a served deployment).
    """
    env = dict(base)
    env.update(extra)
    bin_dir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, path) if p)
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def run_streaming(
    cmd: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    on_line: Callable[[str], None],
) -> tuple[int | None, list[str], float]:
    """Run ``cmd``, passing each output line (stdout+stderr) to ``on_line`` as it comes.

    Returns (exit code or None on timeout, the last TAIL_LINES lines, wall seconds). On timeout
    the whole process group (DVC and the stage it started) is terminated.
    """
    start = time.monotonic()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            # progress bars redraw with \r: keep only the last state of the line
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n").split("\r")[-1].rstrip()
            if line:
                tail.append(line)
                on_line(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code: int | None = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        code = None
    except BaseException:
        _kill_group(proc)
        raise
    reader.join(timeout=10)
    return code, list(tail), time.monotonic() - start


def run_dvc_repro(
    stage: str,
    repo: Path,
    env: Mapping[str, str],
    timeout_s: float,
    on_line: Callable[[str], None],
    overrides: Sequence[str] = (),
    targets: Sequence[str] | None = None,
) -> StageRun:
    """``dvc repro <stage>`` in ``repo`` (with overrides: ``dvc exp run -S ... <targets>``); raise
    StageFailed with the last lines if it fails."""
    lines: list[str] = []

    def collect(line: str) -> None:
        lines.append(line)
        on_line(line)

    cmd = dvc_command(targets or [stage], overrides)
    code, tail, seconds = run_streaming(cmd, repo, env, timeout_s, collect)
    if code is None:
        raise StageFailed(stage, f"timed out after {timeout_s:g} s", tail, exit_code=None)
    if code != 0:
        stage_code = stage_exit_code(tail)
        refused = dvc_input_error(lines) if stage_code is None else None
        if refused is not None:  # DVC could not read the project's files: bad input, not retried
            bad_input = int(ExitCode.BAD_INPUT)
            raise StageFailed(stage, f"failed (dvc exit code {code}: {refused})", tail, bad_input)
        why = f"exit code {stage_code}" if stage_code is not None else f"dvc exit code {code}"
        raise StageFailed(stage, f"failed ({why})", tail, stage_code)
    return StageRun(stage=stage, seconds=round(seconds, 3), statuses=parse_repro_output(lines),
                    experiment=experiment_name(lines))
