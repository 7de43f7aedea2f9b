"""The two word scorers on real (tiny) models: self-information and LLMLingua-2."""

import math
from pathlib import Path

import pytest
import torch

from tests.fixtures.tiny_models import build_tiny_token_classifier
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.hf import load_causal_lm
from tokenskip.data.synthetic import generate_problems
from tokenskip.prune.pruning import split_words, token_word_map
from tokenskip.prune.scorers import (
    LLMLingua2Scorer,
    RandomScorer,
    SelfInformationScorer,
    load_token_classifier,
    make_scorer,
)

COTS = [r["answer"].rsplit("####", 1)[0].strip() for r in generate_problems(11, 40)]


@pytest.fixture(scope="module")
def tiny_lm(tiny_model_dir: Path):
    return load_causal_lm(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_token_classifier(tmp_path_factory.mktemp("clf") / "xlm-roberta-large-tiny", COTS)


def _manual_self_information(model, tokenizer, prompt: str, text: str) -> list[float]:
    prefix = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor([prefix + encoded["input_ids"]])
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    surprisal = [-logp[len(prefix) + k - 1, t].item() for k, t in enumerate(encoded["input_ids"])]
    mapping = token_word_map(encoded["offset_mapping"], split_words(text))
    return [sum(surprisal[t] for t in tokens) for tokens in mapping]


def test_self_information_matches_unbatched_definition(tiny_lm) -> None:
    model, tokenizer = tiny_lm
    texts, prompts = COTS[:5], [f"Question {i}?" for i in range(5)]
    batched = SelfInformationScorer(model, tokenizer, batch_size=4).score(texts, prompts)
    for text, prompt, scores in zip(texts, prompts, batched, strict=True):
        assert len(scores) == len(split_words(text))
        expected = _manual_self_information(model, tokenizer, prompt, text)
        assert scores == pytest.approx(expected, rel=1e-3, abs=1e-3)


def test_self_information_rates_an_odd_word_above_a_usual_one(tiny_lm) -> None:
    model, tokenizer = tiny_lm
    scorer = SelfInformationScorer(model, tokenizer)
    usual, odd = scorer.score(["Let's think about this step by step.", "Let's think qxzv this step by step."])
    assert odd[2] > usual[2]


def test_llmlingua2_word_prob_is_mean_of_subtoken_keep_probs(classifier_dir: Path) -> None:
    model, tokenizer = load_token_classifier(str(classifier_dir), "cpu")
    text = COTS[0]
    scores = LLMLingua2Scorer(model, tokenizer).score([text, COTS[1]])[0]
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor([[tokenizer.cls_token_id, *encoded["input_ids"], tokenizer.sep_token_id]])
    with torch.inference_mode():
        keep = torch.softmax(model(input_ids=ids).logits[0], dim=-1)[1:-1, 1].tolist()
    mapping = token_word_map(encoded["offset_mapping"], split_words(text))
    expected = [sum(keep[t] for t in tokens) / len(tokens) for tokens in mapping]
    assert scores == pytest.approx(expected, abs=1e-5)
    assert all(0.0 < s < 1.0 for s in scores)


def test_llmlingua2_chunks_long_texts(classifier_dir: Path) -> None:
    model, tokenizer = load_token_classifier(str(classifier_dir), "cpu")
    long_text = " ".join(COTS[:20])
    n_tokens = len(tokenizer(long_text, add_special_tokens=False)["input_ids"])
    scorer = LLMLingua2Scorer(model, tokenizer, max_seq_len=66)
    chunks = scorer._chunks(tokenizer(long_text, add_special_tokens=False)["input_ids"])
    assert len(chunks) >= math.ceil(n_tokens / 64)
    assert all(b - a <= 64 for a, b in chunks) and chunks[0][0] == 0 and chunks[-1][1] == n_tokens
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(long_text, add_special_tokens=False)["input_ids"])
    assert tokens[chunks[0][1] - 1].endswith(".")  # cut after a sentence end
    scores = scorer.score([long_text])[0]
    assert len(scores) == len(split_words(long_text))


def test_scorer_model_errors_are_one_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(TokenSkipError, match="scorer model folder not found"):
        load_token_classifier(str(tmp_path / "missing"))
    with pytest.raises(TokenSkipError, match="not a token classifier"):
        load_token_classifier(str(tiny_model_dir))
    with pytest.raises(TokenSkipError, match="unknown scorer 'tfidf'"):
        make_scorer("tfidf", None, None, 8)


def test_random_scorer_is_seeded_per_text_and_needs_no_model() -> None:
    texts = COTS[:6]
    first = make_scorer("random", None, None, 4, seed=3).score(texts)
    assert [len(s) for s in first] == [len(split_words(t)) for t in texts]
    assert all(0.0 <= v < 1.0 for scores in first for v in scores)
    assert RandomScorer(3).score(texts[::-1]) == first[::-1]  # a CoT's scores ignore order and batch
    assert RandomScorer(4).score(texts) != first
