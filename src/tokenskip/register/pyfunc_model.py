"""The MLflow pyfunc wrapper served from the registry: question in, compressed CoT and answer out.

One model version per compression ratio; each carries its ratio as the default inference
parameter, so ``model.predict(["question"], params={"ratio": 0.7})`` overrides it. The weights
are the run's, logged once and referenced by URI (:mod:`tokenskip.register.weights`): the merged
model, or the LoRA adapter (carried by each version) over the base model (a local base logged
once; a hub base by id and revision through ``model.json``).
Output rows: ``{"cot", "answer", "ratio", "output", "cot_tokens"}``. Prompts come from the model's
ratio chat template (:mod:`tokenskip.core.prompts`), the same one ``tokenskip serve`` serves; a bad
request is a 400 with one line naming the field (:class:`BadRequest`).
"""

from __future__ import annotations

import logging
import math
import shutil
import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

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


class BadRequest(MlflowException):
    """A request's fault, answered 400 (``INVALID_PARAMETER_VALUE``) with one line naming the field.

    MLflow's scoring server (``mlflow models serve``) rewrites the message of an MlflowException
    raised in ``predict`` to ``Failed to predict data '<the whole request>'. \\nError: ...``: two
    lines that echo the input back (a 1 MB question: 1 MB). This message keeps its one line.
    """

    def __init__(self, message: str) -> None:
        self._line = message
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:  # type: ignore[override]
        """The one line, whatever the scoring server assigns."""
        return self._line

    @message.setter
    def message(self, value: str) -> None:
        return  # the scoring server's rewrite (and MlflowException's own assignment) is ignored


class TokenSkipModel(mlflow.pyfunc.PythonModel):
    """Pyfunc model: greedy TokenSkip generation at a (default or requested) compression ratio."""

    def load_context(self, context: Any) -> None:
        """Load the fine-tuned model and tokenizer from the version's artifacts."""
        from tokenskip.core.decoding import override_repetition_penalty
        from tokenskip.core.hf import load_finetuned
        from tokenskip.register.weights import finetuned_layout

        self.config = dict(context.model_config or {})
        layout = finetuned_layout(dict(context.artifacts or {}), self.config.get("weights") or {})
        self._tmp = layout.temporary
        self.model, self.tokenizer = load_finetuned(layout.model_dir, layout.base_dir)
        override_repetition_penalty(self.model, self.config.get("repetition_penalty"))

    def predict(self, context, model_input, params=None):  # no type hints: MLflow would read them as a schema
        """Answer each question: ``[{"cot", "answer", "ratio", "output", "cot_tokens"}, ...]``.

        A bad request (ratio not trained, NaN or out of range; max_new_tokens not a positive
        integer; no question, an empty one, one longer than the context) is a :class:`BadRequest`."""
        from tokenskip.core.decoding import generate_greedy
        from tokenskip.core.records import count_tokens

        settings = {**self.config, **{k: v for k, v in (params or {}).items() if v is not None}}
        ratio = request_ratio(settings["ratio"])
        max_new_tokens = request_max_new_tokens(settings["max_new_tokens"])
        questions = checked_questions(questions_of(model_input))
        prompts = request_prompts(self.tokenizer, questions, settings["instruction"], ratio)
        check_question_lengths(self.model, self.tokenizer, prompts)
        outputs, _ = generate_greedy(
            self.model, self.tokenizer, prompts, int(settings.get("batch_size", 8)), max_new_tokens,
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


def request_ratio(value: Any) -> float:
    """``params.ratio`` as a float: a number in (0, 1] (which ratios were trained, the prompt checks)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"params.ratio must be a number in (0, 1] (got {value!r})")
    ratio = float(value)
    if not math.isfinite(ratio) or not 0 < ratio <= 1:
        raise BadRequest(f"params.ratio must be in (0, 1] (got {ratio})")
    return ratio


def request_max_new_tokens(value: Any) -> int:
    """``params.max_new_tokens`` as a positive int."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or value != int(value) or value < 1:
        raise BadRequest(f"params.max_new_tokens must be a positive integer (got {value!r})")
    return int(value)


def checked_questions(questions: list[str]) -> list[str]:
    """The questions, refused when there are none or one is empty (``inputs[i]`` names it)."""
    if not questions:
        raise BadRequest("inputs: no question (send a list of question strings)")
    for index, question in enumerate(questions):
        if not question.strip():
            raise BadRequest(f"inputs[{index}]: the question is empty")
    return questions


def request_prompts(tokenizer: Any, questions: list[str], instruction: str, ratio: float) -> list[str]:
    """The prompts: through the model's ratio chat template (the one ``tokenskip serve`` serves;
    an untrained ratio fails there, naming the trained ones), or build_prompt for a model saved
    without it."""
    from jinja2.exceptions import TemplateError

    from tokenskip.core.prompts import build_prompt, is_ratio_template, render_prompt

    if not is_ratio_template(getattr(tokenizer, "chat_template", None)):
        return [build_prompt(tokenizer, q, instruction, ratio) for q in questions]
    try:
        return [render_prompt(tokenizer, q, ratio) for q in questions]
    except TemplateError as exc:
        raise BadRequest(f"params.{str(exc).splitlines()[0]}") from None


def check_question_lengths(model: Any, tokenizer: Any, prompts: list[str]) -> None:
    """Refuse a prompt longer than the model's context (``inputs[i]`` names its question)."""
    from tokenskip.core.decoding import check_prompt_lengths, model_context
    from tokenskip.core.errors import TokenSkipError

    labels = [f"inputs[{i}]" for i in range(len(prompts))]
    try:
        check_prompt_lengths(tokenizer, prompts, model_context(model, tokenizer), labels)
    except TokenSkipError as exc:
        raise BadRequest(str(exc)) from None


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
