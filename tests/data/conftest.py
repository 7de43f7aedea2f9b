"""Fixtures of the data tests: the word-level tokenizer the validate fixture is counted in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.data.validate_fixture import write_word_tokenizer


@pytest.fixture(scope="session")
def word_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``--base`` folder holding only a word-level tokenizer (see ``write_word_tokenizer``)."""
    return write_word_tokenizer(tmp_path_factory.mktemp("word_tokenizer"))


@pytest.fixture(scope="session")
def word_tokenizer(word_tokenizer_dir: Path) -> Any:
    """That tokenizer, loaded the way the validate stage loads the target model's."""
    from tokenskip.core.hf import load_tokenizer, resolve_base_model

    return load_tokenizer(*resolve_base_model(word_tokenizer_dir))
