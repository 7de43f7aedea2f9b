"""The MLflow pyfunc wrapper served from the registry: question in, compressed CoT and answer out.

One model version per compression ratio; each carries its ratio as the default inference
parameter, so ``model.predict(["question"], params={"ratio": 0.7})`` overrides it. The weights
are the run's, logged once and referenced by URI (:mod:`tokenskip.register.weights`): the merged
model, or the LoRA adapter (carried by each version) over the base model (a local base logged
once; a hub base by id and revision through ``model.json``).
Output rows: ``{"cot", "answer", "ratio", "output", "cot_tokens"}``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc

from tokenskip.core.hf import ADAPTER_SUBDIR, MODEL_SUBDIR

# pyfunc artifact keys; each is copied by MLflow to ``artifacts/<folder name>``, so the model and
# adapter keys are finetune's folder names and load_finetuned reads the copied layout as it is
MODEL_KEY = MODEL_SUBDIR
ADAPTER_KEY = ADAPTER_SUBDIR
BASE_KEY = "base"
OUTPUT_COLUMNS = ("cot", "answer", "ratio", "output", "cot_tokens")
# saved with every version (the registry UI and `mlflow models serve` show it); MLflow also runs it
# through the logged model once at logging time, so a version that cannot answer is noticed then
INPUT_EXAMPLE = ["Tom has 3 apples. He buys 5 more. How many apples does Tom have now?"]


def split_answer(text: str) -> tuple[str, str | None]:
    """(CoT, answer) of one generated completion, split exactly as generate and evaluate split it."""
    from tokenskip.core.answers import extract_prediction, split_cot

    cot, _ = split_cot(text)
    return cot, extract_prediction(text)


class TokenSkipModel(mlflow.pyfunc.PythonModel):
    """Pyfunc model: greedy TokenSkip generation at a (default or requested) compression ratio."""

    def load_context(self, context: Any) -> None:
        """Load the fine-tuned model and tokenizer from the version's artifacts."""
        from tokenskip.core.hf import load_finetuned
        from tokenskip.register.weights import resolve_weights

        self.config = dict(context.model_config or {})
        artifacts = resolve_weights(dict(context.artifacts or {}), self.config.get("weights") or {})
        self._tmp: str | None = None
        key = MODEL_KEY if MODEL_KEY in artifacts else ADAPTER_KEY
        source = Path(artifacts[key])
        model_dir = source.parent
        if source.name != key:  # renamed by MLflow on a collision: rebuild the expected layout
            self._tmp = tempfile.mkdtemp(prefix="tokenskip-pyfunc-")
            model_dir = Path(self._tmp)
            (model_dir / key).symlink_to(source.resolve(), target_is_directory=True)
        from tokenskip.core.decoding import override_repetition_penalty

        self.model, self.tokenizer = load_finetuned(model_dir, artifacts.get(BASE_KEY, ""))
        override_repetition_penalty(self.model, self.config.get("repetition_penalty"))

    def predict(self, context, model_input, params=None):  # no type hints: MLflow would read them as a schema
        """Answer each question: ``[{"cot", "answer", "ratio", "output", "cot_tokens"}, ...]``."""
        from tokenskip.core.decoding import generate_greedy
        from tokenskip.core.prompts import build_prompt
        from tokenskip.core.records import count_tokens

        settings = {**self.config, **{k: v for k, v in (params or {}).items() if v is not None}}
        ratio = float(settings["ratio"])
        if not 0 < ratio <= 1:
            raise ValueError(f"params.ratio must be in (0, 1] (got {ratio})")
        questions = questions_of(model_input)
        prompts = [build_prompt(self.tokenizer, q, settings["instruction"], ratio) for q in questions]
        outputs, _ = generate_greedy(
            self.model,
            self.tokenizer,
            prompts,
            int(settings.get("batch_size", 8)),
            int(settings["max_new_tokens"]),
            desc="predict",
        )
        rows = []
        for generation in outputs:
            cot, answer = split_answer(generation.text)
            rows.append(
                {
                    "cot": cot,
                    "answer": answer,
                    "ratio": ratio,
                    "output": generation.text,
                    "cot_tokens": count_tokens(self.tokenizer, cot),
                }
            )
        return rows

    def __del__(self) -> None:
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)


def questions_of(model_input: Any) -> list[str]:
    """Questions from a list of strings, a pandas Series/DataFrame (first or ``question`` column)."""
    if hasattr(model_input, "columns"):
        column = "question" if "question" in model_input.columns else model_input.columns[0]
        return [str(q) for q in model_input[column].tolist()]
    if hasattr(model_input, "tolist"):
        model_input = model_input.tolist()
    if isinstance(model_input, str):
        return [model_input]
    return [str(q) for q in model_input]


def model_signature(ratio: float, max_new_tokens: int) -> Any:
    """Input: question strings; output: the answer rows; params: ratio and max_new_tokens."""
    from mlflow.models import infer_signature

    example_out = [
        {"cot": "3 + 5 = 8", "answer": "8", "ratio": ratio, "output": "3 + 5 = 8", "cot_tokens": 5}
    ]
    return infer_signature(
        ["How many apples?"], example_out, params={"ratio": ratio, "max_new_tokens": max_new_tokens}
    )


def package_artifacts(model_dir: str | Path, base_dir: str | Path, weights: dict[str, str]) -> dict[str, str]:
    """Artifacts one version carries itself: the merged model folder, else the adapter plus the
    base model (``model.json`` for a hub id), less what ``weights`` (shared URIs) provide."""
    from tokenskip.core.hf import finetuned_kind

    folder = Path(model_dir)
    if finetuned_kind(folder) == MODEL_KEY:
        carried = {MODEL_KEY: str(folder / MODEL_KEY)}
    else:
        carried = {ADAPTER_KEY: str(folder / ADAPTER_KEY), BASE_KEY: str(Path(base_dir))}
    return {key: path for key, path in carried.items() if key not in weights}


def log_pyfunc(
    model_dir: str | Path,
    base_dir: str | Path,
    ratio: float,
    instruction: str,
    max_new_tokens: int,
    batch_size: int = 8,
    weights: dict[str, str] | None = None,
    repetition_penalty: float | None = None,
) -> Any:
    """Log the pyfunc model in the active run (artifact name ``model``); return its ModelInfo.

    ``weights``: the run's shared weights (``{"model" | "base": URI}``), referenced, not copied."""
    code = Path(__file__).resolve().parents[1]  # the tokenskip package, shipped with the version
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    level = pyfunc_log.level
    pyfunc_log.setLevel(logging.ERROR)  # MLflow's notices about code-based logging
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # hints about type hints and input examples
            return mlflow.pyfunc.log_model(
                name="model",
                python_model=str(Path(__file__).with_name("pyfunc_entry.py")),  # models-from-code: no pickle
                artifacts=package_artifacts(model_dir, base_dir, weights or {}) or None,
                model_config={
                    "weights": weights or {},
                    "ratio": ratio,
                    "instruction": instruction,
                    "max_new_tokens": max_new_tokens,
                    "batch_size": batch_size,
                    "repetition_penalty": repetition_penalty,
                },
                signature=model_signature(ratio, max_new_tokens),
                input_example=INPUT_EXAMPLE,
                code_paths=[str(code)],
                pip_requirements=_requirements(),
            )
    finally:
        pyfunc_log.setLevel(level)


def requirement_pin(package: str, installed: str) -> str:
    """``package==<version>`` without a local label (``torch==2.13.0+cpu`` -> ``torch==2.13.0``):
    a local build such as ``+cpu`` or ``+cu124`` exists on no other host's index."""
    from packaging.version import Version

    return f"{package}=={Version(installed).public}"


def _requirements() -> list[str]:
    """Pinned versions of what the model needs at serving time (no slow requirement inference)."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in ("mlflow", "torch", "transformers", "tokenizers", "safetensors", "peft", "pandas"):
        try:
            pins.append(requirement_pin(package, version(package)))
        except PackageNotFoundError:
            continue
    return pins
