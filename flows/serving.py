"""The served folder of ``tokenskip serve`` and the engine command lines around it.

A served folder is a Hugging Face model folder an OpenAI-compatible engine loads as it is: the
fine-tuned weights, the tokenizer with the ratio chat template that finetune saved
(:func:`tokenskip.core.prompts.ratio_chat_template`), and a ``generation_config.json`` holding
evaluate's decoding settings (greedy, EOS ids, max new tokens, repetition penalty), which both
``transformers serve`` and ``vllm serve`` read. It is built in a cache folder
(``TOKENSKIP_SERVE_CACHE``, default ``~/.cache/tokenskip/serve``) keyed by what it is made of:

- a merged ``model/``: links to its files, plus the generation config;
- an adapter-only version for transformers serve: the adapter merged into its base on load
  (``merge_and_unload``, in float32 on the CPU, saved in the base's dtype);
- an adapter-only version for vLLM: links to the base's weights, the adapter's tokenizer files and
  the generation config; the adapter itself (``lora/``) is served as a LoRA module.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.hf import ADAPTER_CONFIG, ADAPTER_SUBDIR, MODEL_SUBDIR
from tokenskip_flows.support import tool_path

CACHE_ENV = "TOKENSKIP_SERVE_CACHE"
GENERATION_CONFIG = "generation_config.json"
ADAPTER_FILES = {ADAPTER_CONFIG, "adapter_model.safetensors", "adapter_model.bin", "README.md"}
LORA_SUBDIR = "lora"
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the --max-lora-rank values vLLM takes
SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "min_p", "typical_p")  # unused when greedy


@dataclass(frozen=True)
class Source:
    """What to serve: finetune's ``model/`` or ``adapter/`` folder (``kind``), the base model of an
    adapter (base-model's output: the model folder or its ``model.json`` pointer), evaluate's
    decoding settings, and the instruction the ratio template must render."""

    kind: str
    folder: Path
    max_new_tokens: int
    repetition_penalty: float | None
    instruction: str | None = None
    base_dir: str | None = None

    def base(self) -> tuple[str, str | None]:
        """(name or folder, revision) of the adapter's base model."""
        from tokenskip.core.hf import resolve_base_model

        if not self.base_dir:
            raise TokenSkipError(f"{self.folder}: an adapter needs its base model (--base)")
        return resolve_base_model(self.base_dir)


@dataclass(frozen=True)
class Served:
    """A built served folder (its name is the served model's name) and, for vLLM over an adapter,
    the LoRA module folder and the rank vLLM must allow."""

    folder: Path
    lora: Path | None = None
    lora_rank: int | None = None
    decoding: dict[str, Any] = field(default_factory=dict)


def cache_root() -> Path:
    """``$TOKENSKIP_SERVE_CACHE`` or ``~/.cache/tokenskip/serve``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "tokenskip" / "serve"


def _stat_listing(folder: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime) of every file: a cheap identity of a (large) weights folder."""
    return [(p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()]


def source_identity(source: Source, engine: str) -> str:
    """The cache key of ``source`` served by ``engine``: the adapter by content (versions are
    downloaded afresh), weight folders by path, size and time, the decoding settings."""
    from tokenskip.core.io import folder_digests

    adapter = source.kind == ADAPTER_SUBDIR
    files: Any = folder_digests(source.folder) if adapter else _stat_listing(source.folder)
    base, revision = source.base() if adapter else (None, None)
    base_files = _stat_listing(Path(base)) if base and Path(base).is_dir() else None
    identity = {"kind": source.kind, "engine": engine, "files": files, "base": base,
                "base_revision": revision, "base_files": base_files,
                "decoding": [source.max_new_tokens, source.repetition_penalty], "layout": 1}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def _link_files(source: Path, target: Path, skip: set[str]) -> None:
    """Link every file of ``source`` into ``target`` (same relative path) except the names in ``skip``."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_file() and relative.as_posix() not in skip and not relative.parts[0].startswith("."):
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            (target / relative).symlink_to(path.resolve())


def _tokenizer_files(adapter: Path) -> list[Path]:
    """The adapter folder's tokenizer files (finetune saves the tokenizer with the adapter)."""
    return [p for p in sorted(adapter.iterdir()) if p.is_file() and p.name not in ADAPTER_FILES]


def write_generation_config(folder: Path, source_dir: str, revision: str | None, source: Source) -> dict:
    """Write evaluate's greedy settings into ``folder``'s generation config (starting from the one
    of ``source_dir``, the model evaluate ran); returns them (:func:`greedy_settings`)."""
    from transformers import GenerationConfig

    from tokenskip.core.decoding import greedy_settings
    from tokenskip.core.hf import load_generation_config, load_tokenizer

    own = load_generation_config(source_dir, revision)
    tokenizer = load_tokenizer(str(folder))
    settings = greedy_settings(own, tokenizer, source.max_new_tokens, source.repetition_penalty)
    config = GenerationConfig.from_dict(own.to_dict()) if own is not None else GenerationConfig()
    config.do_sample = False
    config._from_model_config = False  # generate must not rebuild it from the model's config
    for name in SAMPLING_FIELDS:
        setattr(config, name, None)
    config.max_new_tokens = settings["max_new_tokens"]
    config.eos_token_id = settings["eos_token_ids"]
    config.repetition_penalty = settings["repetition_penalty"]
    config.pad_token_id = tokenizer.pad_token_id
    (folder / GENERATION_CONFIG).unlink(missing_ok=True)  # never write through a link to the source
    config.save_pretrained(str(folder))
    return settings


def _merge_adapter(source: Source, folder: Path) -> None:
    """The adapter merged into its base (float32 on the CPU), saved in the base's dtype with the
    adapter's tokenizer files."""
    import torch
    from transformers import AutoConfig

    from tokenskip.core.hf import load_finetuned

    name, revision = source.base()
    dtype = AutoConfig.from_pretrained(name, revision=revision, trust_remote_code=False).dtype
    dtype = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    model, _ = load_finetuned(source.folder.parent, str(source.base_dir), "cpu")
    merged = model.merge_and_unload()
    if dtype is not None:
        merged = merged.to(dtype)
    merged.save_pretrained(str(folder), safe_serialization=True)
    for path in _tokenizer_files(source.folder):
        shutil.copy2(path, folder / path.name)


def _lora_rank(adapter: Path) -> int:
    """The smallest ``--max-lora-rank`` vLLM takes that holds the adapter's rank."""
    config = json.loads((adapter / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    rank = max([int(config.get("r", 8)), *map(int, (config.get("rank_pattern") or {}).values())])
    return next((r for r in VLLM_LORA_RANKS if r >= rank), rank)


def _fill(source: Source, engine: str, folder: Path) -> tuple[str, str | None]:
    """Put the model files into ``folder``; return (folder evaluate's generation config comes
    from, its revision)."""
    if source.kind == MODEL_SUBDIR:
        _link_files(source.folder, folder, {GENERATION_CONFIG})
        return str(source.folder), None
    name, revision = source.base()
    if engine == "transformers":
        _merge_adapter(source, folder)
    else:
        base = Path(name)
        if not base.is_dir():  # a hub id not in this host's cache
            raise TokenSkipError(f"{name}: vLLM over an adapter needs the base model as a local folder")
        tokenizer = {p.name for p in _tokenizer_files(source.folder)}
        _link_files(base, folder, tokenizer | {GENERATION_CONFIG})
        for path in _tokenizer_files(source.folder):
            shutil.copy2(path, folder / path.name)
    return name, revision


def build_served(source: Source, engine: str, name: str, root: Path | None = None) -> Served:
    """The served folder ``<cache>/<key>/<name>`` of ``source`` for ``engine`` (``transformers`` or
    ``vllm``), built once per key (staged, then renamed into place)."""
    target = (root or cache_root()) / source_identity(source, engine)
    lora = target / LORA_SUBDIR if source.kind == ADAPTER_SUBDIR and engine == "vllm" else None
    if not (target / name / GENERATION_CONFIG).is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
        try:
            (staging / name).mkdir()
            origin, revision = _fill(source, engine, staging / name)
            write_generation_config(staging / name, origin, revision, source)
            if lora is not None:
                shutil.copytree(source.folder, staging / LORA_SUBDIR)
            shutil.rmtree(target, ignore_errors=True)  # built for another served name
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    decoding = json.loads((target / name / GENERATION_CONFIG).read_text(encoding="utf-8"))
    return Served(target / name, lora, _lora_rank(lora) if lora else None, decoding)


def check_ratio_template(folder: Path, instruction: str | None) -> None:
    """Refuse a served folder whose chat template takes no ratio, or renders another instruction
    than ``instruction`` (the registered version's, or params model.instruction)."""
    from tokenskip.core.hf import load_tokenizer
    from tokenskip.core.prompts import build_prompt, is_ratio_template, render_prompt

    tokenizer = load_tokenizer(str(folder))
    if not is_ratio_template(tokenizer.chat_template):
        raise TokenSkipError(
            f"{folder}: the chat template takes no ratio (the model was saved before finetune wrote "
            "the ratio template): run finetune again")
    if instruction is not None and render_prompt(tokenizer, "?") != build_prompt(tokenizer, "?", instruction):
        raise TokenSkipError(f"{folder}: the chat template renders another instruction than {instruction!r}")


def vllm_command(served: Served, name: str, host: str, port: int, ratio: float | None = None) -> list[str]:
    """``vllm serve`` of a served folder: greedy (temperature 0) with the folder's generation config
    (EOS ids, max new tokens as the default max_tokens, repetition penalty); over an adapter, the
    base as ``<name>-base`` and the adapter as the LoRA module ``<name>``; ``ratio``: the default
    chat_template_kwargs (a request's own override it)."""
    decoding = served.decoding
    override = {"temperature": 0.0, "repetition_penalty": decoding.get("repetition_penalty", 1.0),
                "max_new_tokens": decoding["max_new_tokens"]}
    command = [tool_path("vllm"), "serve", str(served.folder), "--host", host, "--port", str(port),
               "--served-model-name", f"{name}-base" if served.lora else name,
               "--generation-config", str(served.folder),
               "--override-generation-config", json.dumps(override, sort_keys=True),
               "--seed", "0"]
    if served.lora is not None:
        command += ["--enable-lora", "--lora-modules", f"{name}={served.lora}",
                    "--max-lora-rank", str(served.lora_rank)]
    if ratio is not None:
        command += ["--default-chat-template-kwargs", json.dumps({"ratio": ratio})]
    return command


async def _template_error_response(request: Any, exc: Exception) -> Any:
    """A chat template's ``raise_exception`` (the request's ratio or messages): 400 and its one
    line, in the body shape transformers serve gives its other bad requests; other template
    errors (a broken template: the server's fault) stay 500."""
    from fastapi.responses import JSONResponse
    from jinja2.exceptions import TemplateError

    if type(exc) is not TemplateError:
        raise exc
    return JSONResponse({"detail": str(exc).strip().splitlines()[0]}, status_code=400)


def answer_template_errors_with_400() -> None:
    """Make ``transformers serve`` answer a chat template's ``raise_exception`` with 400, not 500.

    transformers serve (5.x) turns a ValueError into 400 but lets the template's
    ``jinja2.exceptions.TemplateError`` through as ``500 Internal Server Error``. Its app is built by
    ``transformers.cli.serving.server.build_server``; this wraps it to add one exception handler
    to the same app (its routes, handlers and engine unchanged)."""
    from jinja2.exceptions import TemplateError
    from transformers.cli.serving import server

    original = server.build_server
    if getattr(original, "tokenskip_template_errors", False):
        return

    def build_server(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)
        app.add_exception_handler(TemplateError, _template_error_response)
        return app

    build_server.tokenskip_template_errors = True  # type: ignore[attr-defined]
    server.build_server = build_server
