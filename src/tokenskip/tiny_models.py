"""Small, randomly initialised models built offline, for tests and benchmarks.

No weights can be downloaded here, so the LLMLingua-2 scorer is exercised on an
``XLMRobertaForTokenClassification`` of the real architecture, with a Unigram (SentencePiece-style)
tokenizer trained in a second on the given texts, saved like any Hugging Face model folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

XLMR_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids 0..4


def train_xlmr_tokenizer(texts: Sequence[str], vocab_size: int = 600) -> object:
    """An ``XLMRobertaTokenizer`` whose Unigram vocabulary is trained on ``texts``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import XLMRobertaTokenizer

    unigram = Tokenizer(models.Unigram())
    unigram.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=XLMR_SPECIALS, unk_token="<unk>", show_progress=False
    )
    unigram.train_from_iterator(list(texts), trainer=trainer)
    vocab = [(piece, float(score)) for piece, score in json.loads(unigram.to_str())["model"]["vocab"]]
    return XLMRobertaTokenizer(vocab=vocab)


def build_tiny_token_classifier(
    folder: str | Path,
    texts: Sequence[str],
    vocab_size: int = 600,
    hidden_size: int = 32,
    num_layers: int = 2,
    seed: int = 0,
) -> Path:
    """Save a random 2-label ``XLMRobertaForTokenClassification`` + tokenizer to ``folder``."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification

    tokenizer = train_xlmr_tokenizer(texts, vocab_size)
    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        num_labels=2,
    )
    model = XLMRobertaForTokenClassification(config).eval()
    out = Path(folder)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
