"""params.yaml parsed into typed, validated models: one model per section.

Every default below is params.yaml's value, so a file or test that leaves a key out gets what
the embedded default run uses (tests/unit/test_params_defaults.py holds the two together).

Every error is one line naming the file, the dotted key path, what was wrong and
what is allowed, e.g. ``params.yaml: prune.ratios.2: must be > 0 and <= 1 (got 1.5)``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core.core_schema import ValidationInfo

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import read_yaml

Ratio = Annotated[float, Field(gt=0, le=1)]
Fraction = Annotated[float, Field(ge=0, le=1)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]

def _not_blank(value: str) -> str:
    """Text that is not empty or blank (checked after the type, so a number is reported as one)."""
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _under_data(value: str | None) -> str | None:
    """A relative path inside ``data/`` (the folder DVC tracks as the stages' dependency)."""
    if value is None:
        return None
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if not parts or parts[0] != "data" or len(parts) < 2 or ".." in parts:
        raise ValueError("must be a file under data/ (DVC tracks data/ only), e.g. data/mine/train.jsonl")
    return value


NonEmptyText = Annotated[str, AfterValidator(_not_blank)]
DataFile = Annotated[str | None, AfterValidator(_under_data)]

DEFAULT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique_sorted_ratios(values: list[float]) -> list[float]:
    if not values:
        raise ValueError("must list at least one ratio in (0, 1]")
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate ratios in {values}")
    return sorted(values)


class FieldMap(Section):
    """``data.dataset: jsonl``: the field holding each part of a record (null: not in the file).
    Gold: ``answer`` when present, else the solution's last ``\\boxed{}`` or text after ``#### ``."""

    question: str = "question"
    solution: str | None = "solution"
    answer: str | None = "answer"
    level: str | None = None
    subject: str | None = None


class DataParams(Section):
    """The dataset trained and evaluated on, its files (null: ``<data>/<dataset>/<split>.jsonl``)
    and the synthetic set's shape."""

    dataset: Literal["synthetic", "gsm8k", "math", "jsonl"] = "synthetic"
    train_path: DataFile = None
    test_path: DataFile = None
    fields: FieldMap | None = Field(default=None, validate_default=True)
    seed: NonNegativeInt = 1234
    synthetic_train: PositiveInt = 40000
    synthetic_test: PositiveInt = 500
    n_train: PositiveInt | None = 8000  # null: every question
    n_test: PositiveInt | None = 500  # null: every problem

    @field_validator("fields")
    @classmethod
    def _fields_for_jsonl(cls, value: FieldMap | None, info: ValidationInfo) -> FieldMap | None:
        dataset = info.data.get("dataset")
        if (dataset == "jsonl") != (value is not None):
            raise ValueError(f"required when data.dataset is jsonl, and only then (it is {dataset})")
        return value


class ModelParams(Section):
    """The target model: ``bootstrap`` (trained by base-model), a local folder or a hub id."""

    name: str = "bootstrap"
    revision: str | None = None
    instruction: str = DEFAULT_INSTRUCTION
    repetition_penalty: PositiveFloat | None = None  # greedy decoding; null = the generation_config's


def require_batch_split(batch_size: int, num_processes: int) -> None:
    """Each of N processes trains on batch_size / N rows of the same global batch."""
    if batch_size % num_processes:
        raise ValueError(f"batch_size ({batch_size}) must be a multiple of num_processes ({num_processes})")


class BaseModelParams(Section):
    """Size and training budget of the tiny bootstrap model (used when model.name=bootstrap): one
    example per row, in length-grouped batches trimmed to their longest example."""

    hidden_size: PositiveInt = 64
    num_layers: PositiveInt = 4
    num_heads: PositiveInt = 4
    intermediate_size: PositiveInt = 256
    initializer_range: PositiveFloat = 0.08  # std of the random initial weights
    vocab_size: PositiveInt = 1024
    seq_len: PositiveInt = 512  # one example per row: must hold the longest training example
    batch_size: PositiveInt = 8  # examples per step (global, over num_processes)
    learning_rate: PositiveFloat = 2e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    warmup_steps: NonNegativeInt = 100
    min_accuracy: Annotated[float, Field(ge=0, le=1)] = 0.7  # held-out accuracy below it: exit 3
    max_steps: PositiveInt = 6400  # the binding budget: same seed and params give the same model
    time_budget_s: PositiveFloat = 3600.0  # safety cap only (reported as stopped_by=time_budget)
    eval_batch_size: PositiveInt = 100
    eval_max_new_tokens: PositiveInt = 256
    threads: PositiveInt = 2  # in all: threads // num_processes per process
    num_processes: PositiveInt = 2  # > 1: data-parallel CPU processes (gloo all-reduce), same global batch
    seed: NonNegativeInt = 0

    @model_validator(mode="after")
    def _batch_splits_over_processes(self) -> BaseModelParams:
        require_batch_split(self.batch_size, self.num_processes)
        return self


class GenerateParams(Section):
    """Greedy CoT generation by the target model on the training questions."""

    batch_size: PositiveInt = 128  # per Ray worker with backend=ray
    max_new_tokens: PositiveInt = 256
    max_cot_tokens: PositiveInt = 250
    backend: Literal["transformers", "ray", "vllm"] = "ray"
    threads: PositiveInt = 1  # torch CPU threads (per Ray worker with backend=ray)
    ray_workers: PositiveInt = 2  # model replicas (Ray actors), one GPU each when the cluster has GPUs
    shard_size: PositiveInt = 256  # prompts per Ray/vLLM shard, rounded down to whole batches
    ray_max_retries: NonNegativeInt = 3  # restarts of a dead worker and retries of its shard


class PruneParams(Section):
    """Importance scoring and pruning of CoTs to each ratio."""

    scorer: Literal["self-information", "llmlingua2", "random"] = "self-information"
    scorer_model: str | None = None
    ratios: list[Ratio] = Field(default_factory=lambda: [0.5, 0.6, 0.7, 0.8, 0.9])
    force_digits: bool = True
    force_tokens: list[str] = Field(default_factory=lambda: ["+", "-", "*", "/", "=", "$"])
    samples_per_question: Literal["one", "all"] = "all"  # every g | one seeded draw of g (the paper)
    batch_size: PositiveInt = 32
    seed: NonNegativeInt = 0
    threads: PositiveInt = 2

    _check_ratios = field_validator("ratios")(_unique_sorted_ratios)


class ValidateParams(Section):
    """Thresholds of the Great Expectations suites."""

    ratio_tolerance: Fraction = 0.05
    ratio_mix_tolerance: Fraction = 0.05


class FinetuneParams(Section):
    """Ratio-conditioned LoRA fine-tuning; each batch a random draw of samples (ratios mixed)."""

    lora_rank: PositiveInt = 64
    lora_alpha: PositiveInt = 128
    lora_dropout: Fraction = 0.0
    target_modules: str | list[str] = "all-linear"
    learning_rate: PositiveFloat = 2e-3
    epochs: PositiveFloat = 1.0
    batch_size: PositiveInt = 16
    full_cot_loss_weight: PositiveFloat = 3.0  # loss weight of original CoTs (g = 1.0); compressed: 1
    gradient_accumulation_steps: PositiveInt = 1
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.03
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    max_length: PositiveInt = 512
    save_steps: PositiveInt = 100
    logging_steps: PositiveInt = 10
    merge: bool = True
    threads: PositiveInt = 2
    seed: NonNegativeInt = 0
    num_processes: PositiveInt = 1  # > 1: data-parallel under accelerate launch (infra/accelerate)

    @model_validator(mode="after")
    def _batch_splits_over_processes(self) -> FinetuneParams:
        require_batch_split(self.batch_size, self.num_processes)
        return self


class EvaluateParams(Section):
    """Evaluation of each ratio and the baselines on the test split."""

    ratios: list[Ratio] = Field(default_factory=lambda: [0.5, 0.6, 0.7, 0.8, 0.9])  # file: null = prune's
    batch_size: PositiveInt = 100
    max_new_tokens: PositiveInt = 256
    latency_samples: PositiveInt = 25
    baseline_latency_samples: PositiveInt = 10
    baselines: bool = True
    truncation_ratios: list[Ratio] = Field(default_factory=lambda: [0.5, 0.7, 0.9])
    n_outputs_per_condition: NonNegativeInt = 5  # evaluated records kept per condition
    threads: PositiveInt = 2
    # paired confidence intervals against the references (original model, g = 1.0)
    bootstrap_resamples: Annotated[int, Field(ge=2000, le=1_000_000)] = 2000
    confidence: Annotated[float, Field(ge=0.5, le=0.999)] = 0.95
    bootstrap_seed: NonNegativeInt = 0

    _check_ratios = field_validator("ratios")(_unique_sorted_ratios)


class GateParams(Section):
    """Promotion thresholds in the MLflow registry."""

    max_accuracy_drop: Fraction = 0.05
    min_token_reduction: Fraction = 0.2
    reference: Literal["original", "g1"] = "original"  # the base model as is, or TokenSkip at g = 1.0
    decision: Literal["point", "upper_ci"] = "upper_ci"  # point estimates, or the paired CI bounds
    require_champion: bool = False  # register exits 4 when no version passes the gate


class MlflowParams(Section):
    """Where runs and models are tracked; MLFLOW_TRACKING_URI overrides tracking_uri."""

    tracking_uri: NonEmptyText = "sqlite:///mlflow/mlflow.db"
    artifact_location: NonEmptyText = "mlflow/artifacts"
    experiment: NonEmptyText = "tokenskip"
    registered_model: str | None = Field(default=None, min_length=1, max_length=200)
    retries: PositiveInt = 4
    retry_backoff_s: Annotated[float, Field(ge=0, le=60)] = 1.0


class FlowParams(Section):
    """Prefect orchestration: retries, timeouts and the nightly schedule."""

    cron: str = "0 2 * * *"
    timezone: str = "UTC"
    retries: NonNegativeInt = 2
    retry_delay_s: Annotated[float, Field(ge=0)] = 10.0
    stage_timeout_s: PositiveFloat = 3600.0

    @field_validator("cron")
    @classmethod
    def _five_field_cron(cls, value: str) -> str:
        import re

        fields = value.split()
        if len(fields) != 5 or not all(re.fullmatch(r"[0-9A-Za-z*/,?-]+", f) for f in fields):
            raise ValueError("must be a 5-field cron expression, e.g. '0 2 * * *'")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone, e.g. 'UTC' or 'Europe/Paris'") from None
        return value


class Params(Section):
    """All of params.yaml."""

    data: DataParams = Field(default_factory=DataParams)
    model: ModelParams = Field(default_factory=ModelParams)
    base_model: BaseModelParams = Field(default_factory=BaseModelParams)
    generate: GenerateParams = Field(default_factory=GenerateParams)
    prune: PruneParams = Field(default_factory=PruneParams)
    validate_: ValidateParams = Field(default_factory=ValidateParams, alias="validate")
    finetune: FinetuneParams = Field(default_factory=FinetuneParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    gates: GateParams = Field(default_factory=GateParams)
    mlflow: MlflowParams = Field(default_factory=MlflowParams)
    flow: FlowParams = Field(default_factory=FlowParams)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _evaluate_ratios_default_to_prune(cls, raw: object) -> object:
        """``evaluate.ratios: null`` (or absent) means "every trained ratio" = ``prune.ratios``,
        so ``dvc exp run -S prune.ratios=[...]`` needs no second override."""
        if not isinstance(raw, dict):
            return raw
        evaluate = raw.get("evaluate") or {}
        if not isinstance(evaluate, dict) or evaluate.get("ratios") is not None:
            return raw
        prune = raw.get("prune") or {}
        ratios = prune.get("ratios") if isinstance(prune, dict) else None
        return {**raw, "evaluate": {**evaluate, "ratios": ratios or PruneParams().ratios}}


def _format_error(source: str, error: ValidationError) -> str:
    first = error.errors()[0]
    path = ".".join(str(part) for part in first["loc"]) or "<root>"
    path = path.replace("validate_", "validate")
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    got = first.get("input")
    shown = "" if first["type"] == "extra_forbidden" else f" (got {got!r})"
    more = len(error.errors()) - 1
    suffix = f" [+{more} more error(s)]" if more else ""
    return f"{source}: {path}: {message}{shown}{suffix}"


def parse_params(raw: object, source: str = "params.yaml") -> Params:
    """Validate an already-parsed YAML mapping; raise TokenSkipError with one clear line."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise TokenSkipError(f"{source}: top level must be a mapping of sections")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise TokenSkipError(_format_error(source, exc)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml (or another profile file): one line for any defect
    (:func:`tokenskip.core.io.read_yaml`: bytes, YAML, duplicate keys; :func:`parse_params`)."""
    source = Path(path)
    if not source.is_file():
        raise TokenSkipError(f"{source}: params file not found")
    return parse_params(read_yaml(source), str(source))
