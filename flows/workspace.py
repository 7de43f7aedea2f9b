"""The workspace stays safe around a run: ``-S`` overrides are validated before DVC touches a file,
a failed run leaves params.yaml as it was, and one command restores the last good outputs.

- :func:`validated_overrides` applies the overrides exactly as ``dvc exp run -S`` will (DVC's own
  function, on a temporary copy of params.yaml) and validates the result with the params models:
  a bad value is one line naming the override and the key, and nothing in the workspace changes
  (``dvc exp run`` would have rewritten params.yaml and deleted the stages' outputs first).
- :func:`params_kept_on_failure` puts params.yaml's bytes back when the run fails or is
  interrupted (``dvc exp run`` leaves its overrides written into it).
- :func:`restore_outputs` (``tokenskip restore``): after any failed or killed run, the committed
  params.yaml, dvc.lock and reports (``cache: false`` metrics are not in DVC's cache, they are in
  git), then every stage's outputs from DVC's cache: ``git checkout -- reports params.yaml dvc.lock
  && dvc checkout --force``.

Nothing here imports Prefect or MLflow.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import atomic_open, read_yaml
from tokenskip.core.params import Params, load_params, parse_params
from tokenskip_flows.support import tool_path

RESTORED_FROM_GIT = ("reports", "params.yaml", "dvc.lock")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def validated_overrides(params_file: Path, overrides: Sequence[str]) -> Params:
    """The params a ``dvc exp run -S <overrides>`` would run with, validated; params_file is not
    touched. One TokenSkipError naming the overrides (and the key) when DVC refuses one or a value
    is not allowed."""
    from dvc.exceptions import DvcException
    from dvc.utils.hydra import apply_overrides

    load_params(params_file)  # the file itself first (bytes, YAML, duplicate keys, values)
    shown = " ".join(f"-S {item}" for item in overrides)
    with tempfile.TemporaryDirectory(prefix="tokenskip-overrides-") as folder:
        copy = Path(folder) / "params.yaml"
        shutil.copyfile(params_file, copy)
        try:
            apply_overrides(copy, list(overrides))
        except DvcException as exc:
            why = _first_line(exc.__cause__) if exc.__cause__ is not None else _first_line(exc)
            raise TokenSkipError(f"{shown}: {why}") from None
        return parse_params(read_yaml(copy), f"{params_file.name} with {shown}")


@contextmanager
def params_kept_on_failure(params_file: Path) -> Iterator[None]:
    """Put ``params_file``'s bytes back if the block raises (a failed or interrupted ``dvc exp
    run`` leaves its overrides written into it); a run that succeeds keeps what DVC wrote."""
    before = params_file.read_bytes()
    try:
        yield
    except BaseException:
        if params_file.read_bytes() != before:
            with atomic_open(params_file, "wb") as handle:
                handle.write(before)
        raise


def restore_outputs(repo: Path, say: Callable[[str], None] = print) -> int:
    """Put back the last committed run: params.yaml, dvc.lock and the reports from git, then every
    stage's outputs from DVC's cache. Returns the exit code (0, or the failed command's)."""
    if not (repo / "dvc.yaml").is_file() or not (repo / ".git").exists():
        raise TokenSkipError(f"{repo}: not the repository root (no dvc.yaml or .git)")
    tracked = [name for name in RESTORED_FROM_GIT if _in_git(repo, name)]
    for command in (["git", "checkout", "--", *tracked], [tool_path("dvc"), "checkout", "--force"]):
        say("$ " + " ".join(Path(command[0]).name if i == 0 else word for i, word in enumerate(command)))
        done = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)
        output = (done.stdout + done.stderr).strip()
        if output:
            say(output)
        if done.returncode != 0:
            return done.returncode
    say("restored: the committed params.yaml, dvc.lock and reports/, and the stages' outputs")
    return 0


def _in_git(repo: Path, name: str) -> bool:
    """Whether ``name`` is tracked by git at HEAD (a deleted file can be checked out again)."""
    done = subprocess.run(["git", "ls-files", "--error-unmatch", name], cwd=repo, capture_output=True,
                          check=False)
    return done.returncode == 0
