"""Bad inputs without a model: non-UTF-8 data files, over-long prompts, empty or broken tokenizers.

Each is one TokenSkipError line naming the file and line, the record, or the model folder; the
CLI prints it as one ``error:`` line and exits 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tokenskip.core.decoding import check_prompt_lengths
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.hf import TOKENIZER_PROBE, check_tokenizer, context_length
from tokenskip.core.io import read_json, read_jsonl
from tokenskip.core.problems import load_problems

GOOD = b'{"question": "Tom has 3 apples.", "answer": "3\\n#### 3"}\n'


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b'{"a": 1}\n{"a": "\xff"}\n', ":2: not valid UTF-8 (byte 8 of the line is 0xff)"),
        (b'{"a": 1}\r\n{"a": 2}\r\n\xfe\n', ":3: not valid UTF-8 (byte 1 of the line is 0xfe)"),
        (b'{"a": 1}\n' * 2000 + b'{"a": "\xc3("}\n', ":2001: not valid UTF-8 (byte 8 of the line is 0xc3)"),
    ],
    ids=["second-line", "crlf-lines", "past-the-first-read-chunk"],
)
def test_read_jsonl_names_the_line_of_bytes_that_are_not_utf8(tmp_path: Path, content: bytes, where: str) -> None:
    path = tmp_path / "records.jsonl"
    path.write_bytes(content)
    with pytest.raises(TokenSkipError) as caught:
        read_jsonl(path, required=("a",))
    assert str(caught.value) == f"{path}{where}"


def test_read_json_names_the_line_of_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(b'{\n  "accuracy": "\xe9"\n}\n')
    with pytest.raises(TokenSkipError) as caught:
        read_json(path)
    assert str(caught.value) == f"{path}:2: not valid UTF-8 (byte 16 of the line is 0xe9)"


def test_load_problems_names_the_line_of_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "test.jsonl"
    path.write_bytes(GOOD + GOOD.replace(b"Tom", b"T\x80m"))
    with pytest.raises(TokenSkipError) as caught:
        load_problems(path)
    assert str(caught.value) == f"{path}:2: not valid UTF-8 (byte 16 of the line is 0x80)"


def test_utf8_files_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "test.jsonl"
    path.write_bytes("\n".join(['{"a": "é"}', "", '{"a": "日本"}']).encode("utf-8") + b"\r\n")
    assert read_jsonl(path, required=("a",)) == [{"a": "é"}, {"a": "日本"}]


def test_cli_prints_one_error_line_for_a_problems_file_that_is_not_utf8(tmp_path: Path) -> None:
    data = tmp_path / "data" / "synthetic"
    data.mkdir(parents=True)
    (data / "train.jsonl").write_bytes(GOOD + GOOD + b'{"question": "\xff", "answer": "#### 1"}\n')
    (tmp_path / "p.yaml").write_text("")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "CI": "true"}
    result = subprocess.run(
        [sys.executable, "-m", "tokenskip", "generate", "--base", str(tmp_path / "no-model"),
         "--data", str(tmp_path / "data"), "--out", str(tmp_path / "cot.jsonl"),
         "--report", str(tmp_path / "generate.json"), "--params", str(tmp_path / "p.yaml")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: {data / 'train.jsonl'}:3: not valid UTF-8 (byte 15 of the line is 0xff)"
    ]
    assert not (tmp_path / "cot.jsonl").exists()


class WordTokenizer:
    """A stand-in tokenizer: one token per word; it records the longest text it was given."""

    def __init__(self, vocab: dict[str, int] | None = None) -> None:
        self.vocab = vocab or {"apples": 0, "twelve": 1}
        self.longest_seen = 0

    def __call__(self, texts: Any, add_special_tokens: bool = False, truncation: bool = False,
                 max_length: int | None = None) -> dict[str, Any]:
        batch = [texts] if isinstance(texts, str) else texts
        self.longest_seen = max([self.longest_seen, *(len(t) for t in batch)])
        ids = [list(range(len(t.split())))[: max_length if truncation else None] for t in batch]
        return {"input_ids": ids[0] if isinstance(texts, str) else ids}

    def get_vocab(self) -> dict[str, int]:
        return self.vocab


def test_prompt_longer_than_the_context_names_its_record() -> None:
    prompts = ["a b c", "w " * 9, "w " * 10, "w " * 11]
    with pytest.raises(TokenSkipError) as caught:
        check_prompt_lengths(WordTokenizer(), prompts, 10)
    assert str(caught.value) == (
        "record 4 of 4: the prompt (22 characters) is longer than the model's context of 10 tokens; "
        "shorten the question"
    )
    with pytest.raises(TokenSkipError, match=r"^data.jsonl: record 4 \(id 'q-3'\): field 'question': "):
        check_prompt_lengths(WordTokenizer(), prompts, 10, [f"data.jsonl: record {n} (id 'q-{n - 1}'): "
                                                              "field 'question'" for n in range(1, 5)])
    check_prompt_lengths(WordTokenizer(), prompts[:3], 10)  # exactly the context fits
    check_prompt_lengths(WordTokenizer(), prompts, None)  # context unknown: nothing to check


@pytest.mark.parametrize(
    "prompt",
    ["apples " * 1_500_000, "apples " * 3_000, "a " * 1_500],
    ids=["10MB-by-length", "prefix-probe", "exact-count"],
)
def test_long_prompt_is_refused_without_tokenizing_all_of_it(prompt: str) -> None:
    tokenizer = WordTokenizer({"apples": 0, "a": 1, "x" * 32: 2})  # tokens of up to 32 characters
    with pytest.raises(TokenSkipError, match=r"^record 2 of 2: the prompt \(\d+ characters\) is longer"):
        check_prompt_lengths(tokenizer, ["short", prompt], 1_000)
    assert tokenizer.longest_seen <= 8 * (1_000 + 16)  # at most a prefix of 8 characters per token


def test_context_comes_from_the_config_else_a_sane_tokenizer_limit() -> None:
    config = SimpleNamespace(max_position_embeddings=2048)
    assert context_length(config, SimpleNamespace(model_max_length=4096)) == 2048
    assert context_length(SimpleNamespace(), SimpleNamespace(model_max_length=4096)) == 4096
    assert context_length(None, SimpleNamespace(model_max_length=int(1e30))) is None


class FakeHfTokenizer:
    """A stand-in for a Hugging Face tokenizer: encodes characters it knows, unknown ones as UNK."""

    def __init__(self, vocab: str, specials: tuple[str, ...] = ("<eos>",), unk: str | None = "<unk>",
                 decode_as: str | None = None) -> None:
        self.pieces = [*specials, *([unk] if unk else []), *vocab]
        self.all_special_tokens = [*specials, *([unk] if unk else [])]
        self.unk_token, self.decode_as = unk, decode_as

    def __len__(self) -> int:
        return len(self.pieces)

    def get_vocab(self) -> dict[str, int]:
        return {piece: i for i, piece in enumerate(self.pieces)}

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        vocab = self.get_vocab()
        fallback = vocab.get(self.unk_token) if self.unk_token else None
        ids = [vocab.get(ch, fallback) for ch in text]
        return {"input_ids": [i for i in ids if i is not None]}

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self.decode_as if self.decode_as is not None else "".join(self.pieces[i] for i in ids)


@pytest.mark.parametrize(
    ("tokenizer", "message"),
    [
        (FakeHfTokenizer(""), "model: tokenizer is empty (its vocabulary holds 2 special token(s) only)"),
        (FakeHfTokenizer("qz", unk=None), "model: tokenizer is broken: the sample text"),
        (FakeHfTokenizer(TOKENIZER_PROBE, decode_as="Tom has 4 apples"), "decode to 'Tom has 4 apples'"),
    ],
    ids=["only-special-tokens", "encodes-to-nothing", "does-not-decode-back"],
)
def test_empty_or_broken_tokenizer_is_refused(tokenizer: FakeHfTokenizer, message: str) -> None:
    with pytest.raises(TokenSkipError) as caught:
        check_tokenizer("model", tokenizer)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "tokenizer",
    [
        FakeHfTokenizer(TOKENIZER_PROBE),
        FakeHfTokenizer("Tomhas3apples"),  # unknown characters: UNK stands for any text
        FakeHfTokenizer(TOKENIZER_PROBE, decode_as=f"  {TOKENIZER_PROBE.upper()} "),  # case, spaces
    ],
    ids=["exact", "unknown-tokens", "case-and-whitespace"],
)
def test_real_tokenizers_pass(tokenizer: FakeHfTokenizer) -> None:
    check_tokenizer("model", tokenizer)
