"""`tokenskip serve` without a model: the vllm command line it builds, the served model's name,
the 400 for a chat template's error, and the pyfunc's one-line bad-request errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from jinja2.exceptions import TemplateError, TemplateSyntaxError

from tokenskip.core.errors import TokenSkipError
from tokenskip.register.pyfunc_model import (
    BadRequest,
    checked_questions,
    request_max_new_tokens,
    request_ratio,
)
from tokenskip_flows.serve import Engine, pick_engine, served_name
from tokenskip_flows.serving import Served, _template_error_response, vllm_command

DECODING = {"max_new_tokens": 320, "repetition_penalty": 1.05, "eos_token_id": [2, 7], "do_sample": False}


def test_vllm_command_of_a_merged_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tokenskip_flows.serving.tool_path", lambda name: name)
    folder = Path("/cache/abc/tokenskip-llama-gsm8k")
    command = vllm_command(Served(folder, decoding=DECODING), "tokenskip-llama-gsm8k", "127.0.0.1", 8000)
    assert command == [
        "vllm", "serve", str(folder), "--host", "127.0.0.1", "--port", "8000",
        "--served-model-name", "tokenskip-llama-gsm8k",
        "--generation-config", str(folder),
        "--override-generation-config",
        '{"max_new_tokens": 320, "repetition_penalty": 1.05, "temperature": 0.0}',
        "--seed", "0",
    ]


def test_vllm_command_of_an_adapter_serves_it_as_a_lora_module_with_a_default_ratio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tokenskip_flows.serving.tool_path", lambda name: name)
    folder, lora = Path("/cache/abc/tokenskip"), Path("/cache/abc/lora")
    served = Served(folder, lora=lora, lora_rank=8, decoding=DECODING)
    command = vllm_command(served, "tokenskip", "0.0.0.0", 8123, ratio=0.6)
    assert command[:9] == ["vllm", "serve", str(folder), "--host", "0.0.0.0", "--port", "8123",
                           "--served-model-name", "tokenskip-base"]
    assert command[command.index("--override-generation-config") + 1] == (
        '{"max_new_tokens": 320, "repetition_penalty": 1.05, "temperature": 0.0}')
    tail = command[command.index("--enable-lora"):]
    assert tail == ["--enable-lora", "--lora-modules", f"tokenskip={lora}", "--max-lora-rank", "8",
                    "--default-chat-template-kwargs", '{"ratio": 0.6}']


def test_served_name_is_the_registered_model_or_tokenskip() -> None:
    assert served_name("models:/tokenskip-llama-gsm8k@champion", None) == "tokenskip-llama-gsm8k"
    assert served_name("models:/m/3", None) == "m"
    assert served_name("models/tokenskip", None) == "tokenskip"
    assert served_name("models/tokenskip", "mine") == "mine"
    for bad in ("a/b", "a@b", "a:b", ".hidden"):
        with pytest.raises(TokenSkipError, match="--served-model-name"):
            served_name("models/tokenskip", bad)


def test_an_explicit_engine_is_kept() -> None:
    assert pick_engine(Engine.transformers) == "transformers"
    assert pick_engine(Engine.vllm) == "vllm"
    assert pick_engine(Engine.auto) in {"transformers", "vllm"}


def test_a_template_exception_is_a_400_with_its_line_and_a_broken_template_stays_an_error() -> None:
    response = asyncio.run(_template_error_response(None, TemplateError("ratio must be one of 0.6 and 1.0")))
    assert response.status_code == 400
    assert json.loads(response.body) == {"detail": "ratio must be one of 0.6 and 1.0"}
    with pytest.raises(TemplateSyntaxError):
        asyncio.run(_template_error_response(None, TemplateSyntaxError("unexpected end", 1)))


def test_bad_request_keeps_one_line_whatever_the_scoring_server_assigns() -> None:
    error = BadRequest("params.ratio must be in (0, 1] (got 1.7)")
    error.message = "Failed to predict data '['x' * 1000000]'. \nError: params.ratio ..."  # the server's rewrite
    assert error.message == "params.ratio must be in (0, 1] (got 1.7)"
    assert error.get_http_status_code() == 400
    body = json.loads(error.serialize_as_json())
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"] == "params.ratio must be in (0, 1] (got 1.7)" and "stack_trace" not in body


@pytest.mark.parametrize("value", [1.7, 0.0, -0.5, float("nan"), float("inf"), "0.6", True, None])
def test_a_ratio_outside_zero_one_or_not_a_number_is_a_bad_request(value: object) -> None:
    with pytest.raises(BadRequest, match=r"^params\.ratio must be"):
        request_ratio(value)


def test_a_ratio_in_range_passes() -> None:
    assert request_ratio(0.6) == 0.6 and request_ratio(1) == 1.0


@pytest.mark.parametrize("value", [-5, 0, 2.5, "10", True, float("nan")])
def test_max_new_tokens_must_be_a_positive_integer(value: object) -> None:
    with pytest.raises(BadRequest, match=r"^params\.max_new_tokens must be a positive integer"):
        request_max_new_tokens(value)


def test_no_question_or_an_empty_one_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match=r"^inputs: no question"):
        checked_questions([])
    with pytest.raises(BadRequest, match=r"^inputs\[1\]: the question is empty"):
        checked_questions(["Q?", "  "])
    assert checked_questions(["Q?"]) == ["Q?"]
