"""The ``tokenskip`` command: one sub-command per pipeline stage (see dvc.yaml), plus ``run``
(the Prefect flow over every stage), ``deploy`` (its scheduled deployment), ``ablation`` (one DVC
experiment per pruning variant, compared) and ``ui`` (the MLflow and Prefect UIs).

Each stage lives in its own package (``tokenskip.<stage>.cli``) and imports only ``core/`` and
itself. A run of one command imports only that command's module, so a stage's code is exactly
``src/tokenskip/core`` + ``src/tokenskip/<stage>`` + this entry point: what its dvc.yaml deps list.
``run``, ``deploy``, ``ablation`` and ``ui`` are not the library's: they come from the entry-point
group ``tokenskip.commands`` (pyproject.toml: the flows, package ``tokenskip_flows``), whose
metadata is read without importing them; only the requested one is loaded, and only they import
Prefect. The library never imports the flows.

Exit codes: 0 success, 1 anything else, 2 bad input, 3 validation failed, 4 no version passed
the gate when ``gates.require_champion`` asks for one (``tokenskip.core.errors.ExitCode``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from enum import StrEnum
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import typer

from tokenskip.core.errors import TokenSkipError, exit_code_of

# command -> (module, function), in stage-graph order; synthesize writes data/ (tracked by data.dvc)
STAGE_COMMANDS: dict[str, tuple[str, str]] = {
    "synthesize": ("tokenskip.data.cli", "synthesize"),
    "base-model": ("tokenskip.base_model.cli", "base_model"),
    "generate": ("tokenskip.generate.cli", "generate"),
    "prune": ("tokenskip.prune.cli", "prune"),
    "validate": ("tokenskip.validate.cli", "validate"),
    "finetune": ("tokenskip.finetune.cli", "finetune"),
    "evaluate": ("tokenskip.evaluate.cli", "evaluate"),
    "register": ("tokenskip.register.cli", "register"),
}
# the commands around the stages: entry points of this group (installed by pyproject.toml)
COMMAND_GROUP = "tokenskip.commands"

# set by every entry point where the user has not set them: telemetry off for every tool; a
# temporary Prefect API server may need long to start; `mlflow ui` without its job runner; and one
# float summation order on every x86-64 CPU with AVX2 (README: the reproducibility contract):
# torch's kernels and MKL's matrix products otherwise pick their code path by CPU, and an AVX512
# box trained another base model than an AVX2 box (cost here: 3% of base-model's training time)
ENV_DEFAULTS: dict[str, str] = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2",
}
LOG_LEVEL_ENV = "TOKENSKIP_LOG_LEVEL"  # passed on to the stages the flow runs
GLOBAL_OPTIONS_WITH_VALUE = ("--log-level",)


class LogLevel(StrEnum):
    """The ``--log-level`` choices."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def apply_env_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Set ENV_DEFAULTS (telemetry off, ...) in ``environ`` (default: os.environ) where unset."""
    target = os.environ if environ is None else environ
    for key, value in ENV_DEFAULTS.items():
        target.setdefault(key, value)


def set_log_level(level: str, environ: MutableMapping[str, str] | None = None) -> None:
    """Log at ``level`` here and in what this process starts (the stages, Prefect, MLflow)."""
    target = os.environ if environ is None else environ
    name = level.upper()
    target[LOG_LEVEL_ENV] = level.lower()
    target["PREFECT_LOGGING_LEVEL"] = name
    target["MLFLOW_LOGGING_LEVEL"] = name
    logging.basicConfig(level=name, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def _global_options(
    log_level: LogLevel | None = typer.Option(
        None, "--log-level", case_sensitive=False,
        help=f"Log level of this command and of what it starts: the stages, Prefect, MLflow "
        f"(default: ${LOG_LEVEL_ENV}, else each tool's own)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Same as --log-level debug"),
) -> None:
    """TokenSkip pipeline: controllable chain-of-thought compression."""
    chosen = "debug" if verbose else (log_level.value if log_level else os.environ.get(LOG_LEVEL_ENV))
    if chosen:
        set_log_level(chosen)


def tool_commands() -> dict[str, EntryPoint]:
    """The commands around the stages, by name: the entry points of COMMAND_GROUP (read from the
    installed metadata, nothing imported); a name that is also a stage command is left out."""
    return {ep.name: ep for ep in entry_points(group=COMMAND_GROUP) if ep.name not in STAGE_COMMANDS}


def command_names() -> list[str]:
    """Every command: the tool commands first, then the stages in stage-graph order."""
    return [*tool_commands(), *STAGE_COMMANDS]


def load_command(name: str, tools: dict[str, EntryPoint] | None = None) -> Any:
    """The function of command ``name``: a stage's from its own module, a tool's from its entry point."""
    if name in STAGE_COMMANDS:
        module, function = STAGE_COMMANDS[name]
        return getattr(import_module(module), function)
    return (tool_commands() if tools is None else tools)[name].load()


def build_app(commands: list[str] | None = None) -> typer.Typer:
    """The Typer app with ``commands`` (default: all), importing only their modules."""
    app = typer.Typer(
        help="TokenSkip pipeline: controllable chain-of-thought compression.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_global_options)
    tools = tool_commands()
    for name in commands or [*tools, *STAGE_COMMANDS]:
        app.command(name)(load_command(name, tools))
    return app


def __getattr__(name: str) -> Any:
    """``tokenskip.cli.app``: the app with every command (for ``CliRunner`` and ``--help``)."""
    if name == "app":
        return build_app()
    raise AttributeError(name)


def requested_command(argv: list[str]) -> str | None:
    """The sub-command named in ``argv`` after the global options, if it is a known one."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in GLOBAL_OPTIONS_WITH_VALUE else 1
    return argv[i] if i < len(argv) and argv[i] in command_names() else None


def main() -> None:
    """Entry point: set the environment defaults, run the app; a TokenSkipError becomes one
    ``error:`` line and its exit code (2 bad input, 3 validation, 4 no champion, 1 other)."""
    apply_env_defaults()
    requested = requested_command(sys.argv[1:])
    try:
        build_app([requested] if requested else None)()
    except TokenSkipError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exit_code_of(exc))
    except KeyboardInterrupt:
        sys.exit(130)  # as a shell reports Ctrl-C


if __name__ == "__main__":  # ``python -m tokenskip.cli`` (e.g. ``accelerate launch -m tokenskip.cli``)
    main()
