"""``tokenskip serve [MODEL]``: the fine-tuned model behind an OpenAI-compatible chat endpoint
whose chat template takes the ratio (``chat_template_kwargs={"ratio": 0.6}``; none or 1.0: the
full CoT), on ``transformers serve`` or ``vllm serve`` (docs/serving.md).

MODEL is finetune's output folder (``models/tokenskip``), its ``model/`` or ``adapter/`` folder,
or a registry URI ``models:/<name>@<alias>``; by default the ``champion`` of the registered model
that params.yaml configures, fetched through the tracking store alone (any host that reaches it).
The served folder (:mod:`tokenskip_flows.serving`) carries evaluate's decoding settings.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.hf import ADAPTER_CONFIG, ADAPTER_SUBDIR, MODEL_SUBDIR, finetuned_kind
from tokenskip_flows.serving import (
    Served,
    Source,
    answer_template_errors_with_400,
    build_served,
    cache_root,
    check_ratio_template,
    vllm_command,
)

if TYPE_CHECKING:
    from tokenskip.core.params import Params

REGISTRY_SCHEMES = ("models:/", "runs:/")
DEFAULT_ALIAS = "champion"
FOLDER_NAME = "tokenskip"  # the served model's name for a folder (a version: its registered model's)


class Engine(StrEnum):
    """The ``--engine`` choices."""

    auto = "auto"
    transformers = "transformers"
    vllm = "vllm"


def pick_engine(engine: Engine) -> str:
    """``auto``: vLLM where it imports and a GPU is visible, else transformers serve."""
    if engine != Engine.auto:
        return engine.value
    import torch

    return "vllm" if importlib.util.find_spec("vllm") and torch.cuda.is_available() else "transformers"


def folder_source(path: Path, params: Params, base: Path) -> Source:
    """A local folder: finetune's output (``model/`` preferred, else ``adapter/``), or one of the
    two; decoding and instruction from params (evaluate.max_new_tokens, model.*)."""
    if (path / "config.json").is_file() or (path / ADAPTER_CONFIG).is_file():
        kind, folder = (MODEL_SUBDIR if (path / "config.json").is_file() else ADAPTER_SUBDIR), path
    else:
        kind = finetuned_kind(path)
        folder = path / kind
    return Source(kind, folder.resolve(), params.evaluate.max_new_tokens,
                  params.model.repetition_penalty, params.model.instruction,
                  str(base.resolve()) if kind == ADAPTER_SUBDIR else None)


def version_source(uri: str, tracking_uri: str, params: Params, into: Path) -> Source:
    """A registered version: downloaded into ``into`` through the tracking store (its shared weights
    once, into the weights cache); decoding and instruction from the version's own config."""
    from tokenskip.register.weights import download_version, finetuned_layout
    from tokenskip.tracking.retries import Retry
    from tokenskip.tracking.store import globally, open_store

    settings = params.mlflow
    tracking = open_store(tracking_uri, Retry(settings.retries, settings.retry_backoff_s))
    with globally(tracking_uri):
        files = tracking.call(f"download {uri}", lambda: download_version(uri, into))
        weights = files.config.get("weights") or {}
        layout = tracking.call(f"download the weights of {uri}",
                               lambda: finetuned_layout(files.artifacts, weights, into))
    kind = finetuned_kind(layout.model_dir)
    config = files.config
    return Source(kind, (layout.model_dir / kind).resolve(), int(config["max_new_tokens"]),
                  config.get("repetition_penalty"), config.get("instruction"), layout.base_dir or None)


def default_uri(params: Params) -> str:
    """``models:/<the configured registered model>@champion``."""
    from tokenskip.register.registry import registered_model_name

    name = registered_model_name(params.mlflow.registered_model,
                                 params.model.name, params.data.dataset)
    return f"models:/{name}@{DEFAULT_ALIAS}"


def served_name(model: str, chosen: str | None) -> str:
    """The model name requests give: ``--served-model-name``, a version's registered model name, or
    ``tokenskip``. It names a folder the engine loads, so no ``@``, ``:`` or ``/``."""
    registered = None
    if model.startswith(REGISTRY_SCHEMES):
        registered = model.split(":/", 1)[1].split("@")[0].split("/")[0]
    name = chosen or registered or FOLDER_NAME
    if not name or any(c in name for c in "@:/\\") or name.startswith("."):
        raise TokenSkipError(f"--served-model-name {name!r}: use letters, digits, '.', '-' and '_'")
    return name


def run_transformers(served: Served, host: str, port: int, ratio: float | None) -> None:
    """``transformers serve`` of the served folder, in this process, pinned to it: requests name it
    by its folder name (the server runs in the folder above); float32 on the CPU, bfloat16 on a
    GPU, as evaluate decodes; template errors answered 400."""
    import torch
    from transformers.cli.serve import Serve

    answer_template_errors_with_400()
    os.chdir(served.folder.parent)
    kwargs = json.dumps({"ratio": ratio}) if ratio is not None else None
    Serve(force_model=served.folder.name, host=host, port=port, trust_remote_code=False,
          dtype="bfloat16" if torch.cuda.is_available() else "float32", chat_template_kwargs=kwargs)


def serve(
    model: str | None = typer.Argument(
        None, help="finetune's output folder (models/tokenskip), its model/ or adapter/ folder, or "
        "models:/<name>@<alias>; default: models:/<params' registered model>@champion"),
    host: str = typer.Option("127.0.0.1", help="Listen address (0.0.0.0: every interface)"),
    port: int = typer.Option(8000, help="Listen port"),
    engine: Engine = typer.Option(
        Engine.auto, help="transformers: transformers serve in this process (an adapter-only model is "
        "merged into its base on load, once, into the cache folder); vllm: vllm serve (an adapter-only "
        "model is served as the LoRA module MODEL-NAME over MODEL-NAME-base); auto: vllm where it "
        "imports and a GPU is visible"),
    ratio: float | None = typer.Option(
        None, help="The server's default ratio (a request's chat_template_kwargs ratio overrides it); "
        "default: none, the full CoT"),
    served_model_name: str | None = typer.Option(
        None, "--served-model-name", help="The model name requests give (default: the registered "
        "model's name, or tokenskip for a folder)"),
    repo: Path = typer.Option(
        Path("."), help="Repository root: its params.yaml names the tracking store and registered "
        "model, and for a folder evaluate's decoding settings and model.instruction"),
    base: Path = typer.Option(
        Path("models/base"), help="Base model (base-model's output) of an adapter-only folder"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Build the served folder, print it and the engine's command line, exit"),
) -> None:
    """Serve the TokenSkip model behind an OpenAI-compatible chat endpoint with a ratio knob.

    Built once into $TOKENSKIP_SERVE_CACHE (default ~/.cache/tokenskip/serve): the model, its
    ratio chat template, and evaluate's greedy decoding settings in generation_config.json.
    """
    from tokenskip.core.params import load_params
    from tokenskip.tracking.store import resolve_uri

    root = repo.resolve()
    params = load_params(root / "params.yaml")
    chosen = model or default_uri(params)
    name = served_name(chosen, served_model_name)
    picked = pick_engine(engine)
    download = Path(tempfile.mkdtemp(prefix="tokenskip-serve-"))
    try:
        if chosen.startswith(REGISTRY_SCHEMES):
            source = version_source(chosen, resolve_uri(params.mlflow.tracking_uri, root), params, download)
        else:
            source = folder_source(Path(chosen), params, base)
        served = build_served(source, picked, name)
    finally:
        shutil.rmtree(download, ignore_errors=True)
    check_ratio_template(served.folder, source.instruction)
    command = vllm_command(served, name, host, port, ratio) if picked == "vllm" else None
    typer.echo(f"serving {chosen} as {name!r} on http://{host}:{port}/v1 ({picked}; {served.folder}; "
               f"cache {cache_root()})")
    if dry_run:
        typer.echo(json.dumps({"folder": str(served.folder), "engine": picked, "command": command}))
        return
    if command is None:
        run_transformers(served, host, port, ratio)
        return
    raise typer.Exit(subprocess.call(command))
