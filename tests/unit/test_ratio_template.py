"""The ratio chat template (tokenskip.core.prompts.ratio_chat_template): for every trained ratio
and for none, the template with ``ratio`` as a template argument renders byte for byte what
build_prompt renders; anything else fails in the template with one line naming the trained ratios."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import TemplateError

from tokenskip.core.params import DEFAULT_INSTRUCTION
from tokenskip.core.prompts import (
    add_ratio_template,
    build_prompt,
    is_ratio_template,
    own_chat_template,
    render_prompt,
    trained_ratios,
)

RATIOS = [0.5, 0.6, 0.7, 0.8, 0.9]
TEXTS = ["Tom has 3 apples and buys 12 more, so he has 15. The answer is 15."] * 30
QUESTIONS = [
    "Tom has 3 apples. He buys 5 more. How many apples does Tom have now?",
    "  spaces around, a tab\there and a newline\nthen more  ",
    'Quotes "double" and \'single\', braces {{ x }} {% if %} \\boxed{7}, ünïcødé and 😀?',
]
# a Qwen2.5-style template (default system prompt, whitespace control, a leading newline)
QWEN_STYLE = (
    "\n{%- if messages[0]['role'] == 'system' %}\n"
    "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "{%- else %}\n"
    "    {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if message.role != 'system' %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"
)
# leading blanks and a block on the first line: lstrip_blocks / trim_blocks act on it alone
INDENTED = "  {% for m in messages %}\n[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}\n{{ 'A:' }}"


@pytest.fixture(scope="module")
def bootstrap_tokenizer() -> Any:
    from tokenskip.base_model.tokenizer import build_tokenizer

    return build_tokenizer(TEXTS, 300)


@pytest.fixture(scope="module")
def llama_tokenizer() -> Any:
    from tests.fixtures.smoke_models import build_byte_fallback_bpe

    return build_byte_fallback_bpe(TEXTS, 400)


def tokenizers(bootstrap: Any, llama: Any) -> dict[str, Any]:
    """The fixtures' own templates plus other shapes on the bootstrap tokenizer."""
    shapes = {"bootstrap": bootstrap, "llama3": llama}
    for name, template in {"qwen2.5-style": QWEN_STYLE, "indented": INDENTED}.items():
        other = copy.deepcopy(bootstrap)
        other.chat_template = template
        shapes[name] = other
    return shapes


def wrapped(tokenizer: Any, instruction: str = DEFAULT_INSTRUCTION, ratios: list[float] = RATIOS) -> Any:
    return add_ratio_template(copy.deepcopy(tokenizer), instruction, ratios)


@pytest.mark.parametrize("shape", ["bootstrap", "llama3", "qwen2.5-style", "indented"])
def test_every_trained_ratio_and_none_render_what_build_prompt_renders(
    shape: str, bootstrap_tokenizer: Any, llama_tokenizer: Any
) -> None:
    own = tokenizers(bootstrap_tokenizer, llama_tokenizer)[shape]
    served = wrapped(own)
    assert is_ratio_template(served.chat_template) and not is_ratio_template(own.chat_template)
    for question in QUESTIONS:
        for ratio in [None, *trained_ratios(RATIOS)]:
            expected = build_prompt(own, question, DEFAULT_INSTRUCTION, ratio)
            assert render_prompt(served, question, ratio) == expected, (shape, ratio, question)
            # the pipeline's prompts do not change on a wrapped tokenizer
            assert build_prompt(served, question, DEFAULT_INSTRUCTION, ratio) == expected
    assert render_prompt(served, QUESTIONS[0], 1) == build_prompt(own, QUESTIONS[0], DEFAULT_INSTRUCTION)


def test_saved_folder_renders_the_same_after_loading(bootstrap_tokenizer: Any, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    wrapped(bootstrap_tokenizer).save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert (tmp_path / "chat_template.jinja").is_file()
    for ratio in [None, *RATIOS, 1.0]:
        expected = build_prompt(bootstrap_tokenizer, QUESTIONS[2], DEFAULT_INSTRUCTION, ratio)
        assert render_prompt(loaded, QUESTIONS[2], ratio) == expected


def test_instruction_with_template_syntax_and_escapes_is_taken_literally(bootstrap_tokenizer: Any) -> None:
    instruction = 'Say "hi" {{ 1 }} {% raw %} %} \\n \\\\ end\nsecond line\ttab ü'
    served = wrapped(bootstrap_tokenizer, instruction)
    for ratio in (None, 0.6):
        assert render_prompt(served, "Q?", ratio) == build_prompt(bootstrap_tokenizer, "Q?", instruction, ratio)


def test_wrapping_twice_wraps_the_own_template_once(bootstrap_tokenizer: Any) -> None:
    once = wrapped(bootstrap_tokenizer)
    twice = wrapped(once, ratios=[0.6])
    assert twice.chat_template.count("TokenSkip ratio wrapper") == 1
    assert own_chat_template(twice) == bootstrap_tokenizer.chat_template
    assert render_prompt(twice, "Q?", 0.6) == build_prompt(bootstrap_tokenizer, "Q?", DEFAULT_INSTRUCTION, 0.6)
    with pytest.raises(TemplateError, match="0.6 and 1.0"):
        render_prompt(twice, "Q?", 0.5)


def test_named_templates_are_each_wrapped(bootstrap_tokenizer: Any) -> None:
    own = copy.deepcopy(bootstrap_tokenizer)
    own.chat_template = {"default": bootstrap_tokenizer.chat_template, "plain": INDENTED}
    served = wrapped(own)
    assert all(is_ratio_template(t) for t in served.chat_template.values())
    assert render_prompt(served, "Q?", 0.5) == build_prompt(own, "Q?", DEFAULT_INSTRUCTION, 0.5)


def test_system_and_earlier_turns_are_kept_and_only_the_last_user_message_changes(
    bootstrap_tokenizer: Any,
) -> None:
    served = wrapped(bootstrap_tokenizer)
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "first"},
                {"role": "assistant", "content": "A"}, {"role": "user", "content": "second"}]
    text = served.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, ratio=0.7)
    eos = bootstrap_tokenizer.eos_token
    expected = bootstrap_tokenizer.apply_chat_template(
        [*messages[:3], {"role": "user", "content": f"{DEFAULT_INSTRUCTION}\nsecond{eos}0.7{eos}"}],
        tokenize=False, add_generation_prompt=True)
    assert text == expected


@pytest.mark.parametrize("ratio", [0.3, 1.7, 0.0, -0.6, 0.55, "0.6", True, False, float("nan"),
                                   float("inf"), [0.6], {"g": 0.6}])
def test_untrained_out_of_range_or_non_numeric_ratio_fails_naming_the_trained_ratios(
    ratio: Any, bootstrap_tokenizer: Any
) -> None:
    served = wrapped(bootstrap_tokenizer)
    with pytest.raises(TemplateError) as caught:
        render_prompt(served, "Q?", ratio)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("ratio must be one of the trained ratios 0.5, 0.6, 0.7, 0.8, 0.9 and 1.0")


def test_messages_without_a_user_question_fail_in_one_line(bootstrap_tokenizer: Any) -> None:
    served = wrapped(bootstrap_tokenizer)
    with pytest.raises(TemplateError, match="^messages must hold a user message"):
        served.apply_chat_template([{"role": "system", "content": "S"}], tokenize=False)
    parts = [{"role": "user", "content": [{"type": "text", "text": "Q?"}]}]
    with pytest.raises(TemplateError, match="^the last user message must be text"):
        served.apply_chat_template(parts, tokenize=False)


def test_trained_ratios_outside_zero_one_are_refused(bootstrap_tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="trained ratios"):
        wrapped(bootstrap_tokenizer, ratios=[0.5, 1.5])
