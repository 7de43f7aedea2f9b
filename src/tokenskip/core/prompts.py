"""TokenSkip prompt and completion formats.

Prompt: the chat template over ``instruction + question`` and, for g < 1, the ratio tag
``<eos>g<eos>`` right after the question (the paper's ``question <eos> g <eos>``).
Completion: the (compressed) CoT, then ``The final answer is: \\boxed{N}``.

Serving: :func:`ratio_chat_template` wraps a model's own chat template so that the template itself
takes the ratio (``chat_template_kwargs={"ratio": 0.6}``, as ``transformers serve`` and ``vllm
serve`` pass it), prepends the instruction to the last user message and appends the ratio tag:
what :func:`build_prompt` renders, byte for byte. finetune saves every model folder with it;
:func:`build_prompt` renders with the wrapped model's own template, so its prompts do not change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

FINAL_ANSWER_PREFIX = "The final answer is: "


def ratio_key(ratio: float) -> str:
    """How a ratio is written in file names, report keys and tags: 0.5 -> "0.5", 1.0 -> "1.0"."""
    return f"{ratio:.1f}" if float(ratio).is_integer() else f"{ratio:g}"


def trained_ratios(ratios: Sequence[float], largest_first: bool = True) -> list[float]:
    """The ratios a TokenSkip model is trained and evaluated at: 1.0 (the full CoT, no ratio tag)
    and each configured g, largest first (as reports list them) or smallest first."""
    return sorted({1.0, *ratios}, reverse=largest_first)


def ratio_tag(eos_token: str, ratio: float | None) -> str:
    """``<eos>0.5<eos>`` for g < 1; empty for g = 1.0 or None (the full CoT, as in the paper)."""
    if ratio is None or ratio >= 1.0:
        return ""
    return f"{eos_token}{ratio:g}{eos_token}"


def build_prompt(tokenizer: Any, question: str, instruction: str, ratio: float | None = None) -> str:
    """The generation prompt for ``question`` at ratio g, rendered by the chat template (the
    model's own one: a TokenSkip ratio wrapper, :func:`ratio_chat_template`, is left out)."""
    content = f"{instruction}\n{question}{ratio_tag(tokenizer.eos_token, ratio)}"
    own = own_chat_template(tokenizer)
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True,
        **({"chat_template": own} if own is not None else {}),
    )


def render_prompt(tokenizer: Any, question: str, ratio: float | None = None) -> str:
    """The prompt a served model renders for ``question`` (one user message) at ``ratio``: its chat
    template with the ratio as a template argument, as an OpenAI-compatible server applies it.
    Equal to :func:`build_prompt` with the instruction the template was built with."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True, ratio=ratio
    )


# the last line of the ratio wrapper; the model's own template follows it unchanged. The comment's
# newline is dropped by the template engine (trim_blocks), so the own template starts a line, as
# alone: lstrip_blocks and trim_blocks act on it as they did
WRAPPER_END = "{#- end of the TokenSkip ratio wrapper; the model's own chat template follows #}\n"
RATIO_TOLERANCE = 1e-9  # a requested ratio matches a trained one this closely (JSON floats)
NEWLINE = "\n"


def is_ratio_template(template: Any) -> bool:
    """Whether ``template`` (a string, or a dict of named templates) holds the ratio wrapper."""
    templates = template.values() if isinstance(template, dict) else [template]
    return any(isinstance(t, str) and WRAPPER_END in t for t in templates)


def unwrap_chat_template(template: str) -> str:
    """The model's own template inside a ratio wrapper (``template`` itself when unwrapped)."""
    return template.split(WRAPPER_END, 1)[1] if WRAPPER_END in template else template


def own_chat_template(tokenizer: Any) -> str | None:
    """The model's own chat template when the tokenizer's is a ratio wrapper, else None (use it as is)."""
    template = getattr(tokenizer, "chat_template", None)
    if not is_ratio_template(template):
        return None
    return unwrap_chat_template(tokenizer.get_chat_template())


def _jinja_string(text: str) -> str:
    """``text`` as a Jinja string literal (the lexer decodes Python escapes; other characters pass)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _ratio_list(ratios: Sequence[float]) -> str:
    """``0.5, 0.6 and 1.0``: how the template's error names the trained ratios."""
    keys = [ratio_key(r) for r in ratios]
    return keys[0] if len(keys) == 1 else f"{', '.join(keys[:-1])} and {keys[-1]}"


def ratio_chat_template(own: str, instruction: str, eos_token: str, ratios: Sequence[float]) -> str:
    """A chat template that takes ``ratio`` (a template argument: ``chat_template_kwargs``) and
    renders what :func:`build_prompt` renders: the last user message becomes ``instruction`` +
    ``"\\n"`` + its text + the ratio tag (none for 1.0 or no ratio), then ``own`` (the model's own
    template, unwrapped first if it is already wrapped) renders the messages.

    A ratio that is not one of ``ratios`` (1.0 is always one), a string, a bool, NaN, or
    messages without a user message or with non-text content fail in the template
    (``raise_exception``) with one line naming the trained ratios.
    """
    trained = trained_ratios(ratios, largest_first=False)
    if any(not math.isfinite(r) or not 0 < r <= 1 for r in trained):
        raise ValueError(f"trained ratios must be in (0, 1] (got {list(ratios)})")
    pairs = ", ".join(f"[{float(r)!r}, {_jinja_string(ratio_tag(eos_token, r))}]" for r in trained)
    names = _ratio_list(trained)
    wanted = f"ratio must be one of the trained ratios {names}, or absent for the full CoT"
    lines = [
        f"{{#- TokenSkip: chat_template_kwargs ratio = one of {names} (1.0 or none: the full CoT) -#}}",
        f"{{%- set tokenskip = namespace(tag=none, last=-1, messages=[], ratios=[{pairs}]) -%}}",
        "{%- if ratio is not defined or ratio is none -%}{%- set tokenskip.tag = '' -%}",
        "{%- elif ratio is number and ratio is not boolean -%}",
        "{%- for pair in tokenskip.ratios -%}",
        f"{{%- if (ratio - pair[0]) | abs <= {RATIO_TOLERANCE} -%}}{{%- set tokenskip.tag = pair[1] -%}}"
        "{%- endif -%}",
        "{%- endfor -%}{%- endif -%}",
        "{%- if tokenskip.tag is none -%}",
        f"{{{{- raise_exception({_jinja_string(wanted + ' (got ')} ~ (ratio | tojson) ~ ')') -}}}}",
        "{%- endif -%}",
        "{%- for message in messages -%}{%- if message['role'] == 'user' -%}"
        "{%- set tokenskip.last = loop.index0 -%}{%- endif -%}{%- endfor -%}",
        "{%- if tokenskip.last < 0 -%}",
        "{{- raise_exception('messages must hold a user message (the question)') -}}",
        "{%- endif -%}",
        "{%- for message in messages -%}",
        "{%- if loop.index0 == tokenskip.last -%}",
        "{%- if message['content'] is not string -%}",
        "{{- raise_exception('the last user message must be text (the question)') -}}",
        "{%- endif -%}",
        f"{{%- set message = dict(message, content={_jinja_string(instruction + NEWLINE)}"
        " + message['content'] + tokenskip.tag) -%}",
        "{%- endif -%}",
        "{%- set tokenskip.messages = tokenskip.messages + [message] -%}",
        "{%- endfor -%}",
        "{%- set messages = tokenskip.messages -%}",
    ]
    return "\n".join(lines) + "\n" + WRAPPER_END + unwrap_chat_template(own)


def add_ratio_template(tokenizer: Any, instruction: str, ratios: Sequence[float]) -> Any:
    """Give ``tokenizer`` the ratio chat template (every named template, if it has several) over its
    own one; returns it. Saved with ``save_pretrained``, the folder serves with the ratio knob."""
    template = tokenizer.chat_template
    if isinstance(template, dict):
        tokenizer.chat_template = {
            name: ratio_chat_template(own, instruction, tokenizer.eos_token, ratios)
            for name, own in template.items()
        }
    else:
        tokenizer.chat_template = ratio_chat_template(template, instruction, tokenizer.eos_token, ratios)
    return tokenizer


def format_completion(cot: str, answer: str) -> str:
    """The training target: CoT followed by the final-answer line."""
    return f"{cot.strip()}\n{FINAL_ANSWER_PREFIX}\\boxed{{{answer}}}"
