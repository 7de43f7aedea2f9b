"""Small, randomly initialised models built offline, for tests and benchmarks.

No weights can be downloaded here, so the LLMLingua-2 scorer is exercised on an
``XLMRobertaForTokenClassification`` of the real architecture, with a Unigram (SentencePiece-style)
tokenizer trained in a second on the given texts, saved like any Hugging Face model folder.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

XLMR_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids 0..4


def train_xlmr_tokenizer(texts: Sequence[str], vocab_size: int = 600) -> object:
    """An ``XLMRobertaTokenizer`` with a Unigram vocabulary estimated from ``texts``.

    Pieces are the most frequent words (``▁word`` after a space, as SentencePiece writes them) and
    punctuation marks, plus every character seen, scored by log relative frequency; the tokenizers
    UnigramTrainer stalls near 300 character-level pieces on a corpus this small.
    """
    from transformers import XLMRobertaTokenizer

    counts: Counter[str] = Counter()
    chars: set[str] = {"▁"}
    for text in texts:
        for match in re.finditer(r"\w+|[^\w\s]", text):
            spaced = match.start() == 0 or text[match.start() - 1].isspace()
            counts[("▁" if spaced else "") + match.group()] += 1
            chars.update(match.group())
    room = max(vocab_size - len(XLMR_SPECIALS) - len(chars), 0)
    frequent = [piece for piece, _ in counts.most_common(room)]
    total = sum(counts.values()) + len(chars)
    vocab = [(piece, 0.0) for piece in XLMR_SPECIALS]
    vocab += [(piece, math.log(counts[piece] / total)) for piece in frequent]
    vocab += [(ch, math.log(0.5 / total)) for ch in sorted(chars - set(frequent))]
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
