"""Word importance scorers for pruning: one interface, three implementations.

- ``self-information``: a causal LM (by default the base model); a word's score is the sum of
  -log p(token | prefix) over its tokens, the prefix being the generation prompt when given.
- ``llmlingua2``: an ``AutoModelForTokenClassification`` (LLMLingua-2 semantics): the text is cut
  into chunks of at most 512 model tokens (cut after "." or a line break when possible), and a
  word's score is the mean over its sub-tokens of the probability of label 1 ("keep").
- ``random``: the control of importance: each word gets a seeded uniform draw (seed
  ``prune.seed`` and the text itself, so a CoT's scores do not depend on its batch or position).

Every scorer scores the words of :func:`tokenskip.prune.pruning.split_words`; model tokens are mapped onto
words through the tokenizer's character offsets.
"""

from __future__ import annotations

import inspect
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.progress import progress
from tokenskip.prune.pruning import split_words, token_word_map

SCORERS = ("self-information", "llmlingua2", "random")
CHUNK_END_TOKENS = (".", "\n", "▁.", "Ċ")


class WordScorer(ABC):
    """Scores every word of each text; higher = more important."""

    name: str = ""

    @abstractmethod
    def score(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[list[float]]:
        """One list of word scores per text (words as in ``split_words``); ``contexts`` are the
        prompts the texts answered (used by scorers that condition on a prefix)."""


def _encode(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(encoded["input_ids"]), [tuple(span) for span in encoded["offset_mapping"]]


def _word_values(text: str, offsets: list[tuple[int, int]], values: list[float], mode: str) -> list[float]:
    words = split_words(text)
    scores = []
    for tokens in token_word_map(offsets, words):
        picked = [values[t] for t in tokens]
        if not picked:
            scores.append(0.0)
        elif mode == "sum":
            scores.append(float(sum(picked)))
        else:
            scores.append(float(sum(picked) / len(picked)))
    return scores


def _batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class SelfInformationScorer(WordScorer):
    """Word score = sum over its tokens of -log p(token | prompt + preceding CoT tokens)."""

    name = "self-information"

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 32) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self._keep_arg = "logits_to_keep" in inspect.signature(model.forward).parameters

    def _prefix(self, context: str | None) -> list[int]:
        if context:
            return list(self.tokenizer(context, add_special_tokens=False)["input_ids"])
        start = self.tokenizer.bos_token_id
        return [start if start is not None else self.tokenizer.eos_token_id]

    def _surprisal(self, rows: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        """Left-padded forward pass; -log p of each CoT token of each (prefix, cot) row."""
        import torch

        total = max(len(p) + len(c) for p, c in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), total), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), total), dtype=torch.long)
        for j, (prefix, cot) in enumerate(rows):
            seq = prefix + cot
            ids[j, total - len(seq) :] = torch.tensor(seq)
            mask[j, total - len(seq) :] = 1
        keep = max(len(c) for _, c in rows) + 1
        kwargs: dict[str, Any] = {"logits_to_keep": keep} if self._keep_arg else {}
        device = self.model.device
        with torch.inference_mode():
            logits = self.model(
                input_ids=ids.to(device), attention_mask=mask.to(device),
                position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(device), **kwargs,
            ).logits[:, -keep:, :]
        result = []
        for j, (_, cot) in enumerate(rows):
            n = len(cot)
            logp = torch.log_softmax(logits[j, keep - n - 1 : keep - 1].float(), dim=-1)
            picked = logp.gather(-1, torch.tensor(cot, device=logp.device).unsqueeze(-1)).squeeze(-1)
            result.append((-picked).tolist())
        return result

    def score(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[list[float]]:
        encoded = [_encode(self.tokenizer, t) for t in texts]
        prefixes = [self._prefix(contexts[i] if contexts else None) for i in range(len(texts))]
        results: list[list[float]] = [[] for _ in texts]
        bar = progress(total=len(texts), desc="self-information", unit="cot")
        lengths = [len(p) + len(e[0]) for p, e in zip(prefixes, encoded, strict=True)]
        for batch in _batches(lengths, self.batch_size):
            nonempty = [i for i in batch if encoded[i][0]]
            values = self._surprisal([(prefixes[i], encoded[i][0]) for i in nonempty]) if nonempty else []
            for i, surprisal in zip(nonempty, values, strict=True):
                results[i] = _word_values(texts[i], encoded[i][1], surprisal, "sum")
            bar.update(len(batch))
        bar.close()
        return [r if r else [0.0] * len(split_words(t)) for r, t in zip(results, texts, strict=True)]


class LLMLingua2Scorer(WordScorer):
    """Word score = mean keep-probability (label 1) of its sub-tokens, over 512-token chunks."""

    name = "llmlingua2"

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 32, max_seq_len: int = 512) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.max_len = batch_size, max_seq_len - 2  # room for <s> and </s>

    def _chunks(self, ids: list[int]) -> list[tuple[int, int]]:
        """Token ranges of at most max_len tokens, cut after a sentence end when possible."""
        tokens = self.tokenizer.convert_ids_to_tokens(ids)
        spans, start = [], 0
        while start < len(ids):
            end = min(start + self.max_len, len(ids))
            if end < len(ids):
                cut = next((j + 1 for j in range(end - 1, start, -1) if tokens[j] in CHUNK_END_TOKENS), end)
                end = cut
            spans.append((start, end))
            start = end
        return spans

    def _keep_probs(self, chunks: list[list[int]]) -> list[list[float]]:
        import torch

        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(len(c) for c in chunks) + 2
        ids = torch.full((len(chunks), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunks), width), dtype=torch.long)
        for j, chunk in enumerate(chunks):
            row = [cls_id, *chunk, sep_id]
            ids[j, : len(row)] = torch.tensor(row)
            mask[j, : len(row)] = 1
        device = self.model.device
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        probs = torch.softmax(logits.float(), dim=-1)[:, :, 1].cpu()
        return [probs[j, 1 : len(chunk) + 1].tolist() for j, chunk in enumerate(chunks)]

    def score(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[list[float]]:
        encoded = [_encode(self.tokenizer, t) for t in texts]
        pieces = [(i, a, b) for i, (ids, _) in enumerate(encoded) for a, b in self._chunks(ids)]
        token_probs: list[list[float]] = [[0.0] * len(ids) for ids, _ in encoded]
        bar = progress(total=len(pieces), desc="llmlingua2", unit="chunk")
        for batch in _batches([b - a for _, a, b in pieces], self.batch_size):
            chunks = [encoded[pieces[k][0]][0][pieces[k][1] : pieces[k][2]] for k in batch]
            for k, probs in zip(batch, self._keep_probs(chunks), strict=True):
                i, a, b = pieces[k]
                token_probs[i][a:b] = probs
            bar.update(len(batch))
        bar.close()
        return [_word_values(t, e[1], p, "mean") for t, e, p in zip(texts, encoded, token_probs, strict=True)]


class RandomScorer(WordScorer):
    """Word score = a uniform draw in [0, 1) seeded by (seed, text): importance-free pruning under
    the same forced words, token budget and calibration as the real scorers."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def score(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[list[float]]:
        scores = []
        for text in texts:
            draw = random.Random(f"{self.seed}\0{text}")  # str seed: hashed with SHA-512, stable
            scores.append([draw.random() for _ in split_words(text)])
        return scores


def load_token_classifier(name: str, device: str | None = None) -> tuple[Any, Any]:
    """Load (model, tokenizer) of a token classifier from a local folder or hub id."""
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    from tokenskip.core.hf import pick_device

    path = Path(name).expanduser()
    if not path.exists() and (name.startswith(("/", ".", "~")) or name.count("/") != 1):
        raise TokenSkipError(f"{name}: scorer model folder not found")
    try:
        config = AutoConfig.from_pretrained(name, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise TokenSkipError(f"{name}: cannot load the scorer model ({str(exc).splitlines()[0]})") from None
    architectures = getattr(config, "architectures", None) or []
    if not any(a.endswith("ForTokenClassification") for a in architectures):
        raise TokenSkipError(f"{name}: not a token classifier (architectures: {architectures or 'none'})")
    device = device or pick_device()
    tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=False)
    model = AutoModelForTokenClassification.from_pretrained(name, trust_remote_code=False)
    return model.to(device).eval(), tokenizer


def make_scorer(
    name: str, scorer_model: str | None, base: tuple[Any, Any] | None, batch_size: int, seed: int = 0
) -> WordScorer:
    """Build the scorer ``name``; ``base`` is the (model, tokenizer) of the base model, used by
    self-information when ``scorer_model`` is None; ``seed`` seeds the random scorer."""
    from tokenskip.core.hf import load_causal_lm

    if name == "random":
        return RandomScorer(seed)

    if name == "self-information":
        if scorer_model is None:
            if base is None:
                raise TokenSkipError("prune.scorer_model: self-information needs a model")
            model, tokenizer = base
        else:
            model, tokenizer = load_causal_lm(scorer_model)
        return SelfInformationScorer(model, tokenizer, batch_size)
    if name == "llmlingua2":
        model, tokenizer = load_token_classifier(scorer_model or LLMLINGUA2_DEFAULT)
        return LLMLingua2Scorer(model, tokenizer, batch_size)
    raise TokenSkipError(f"prune.scorer: unknown scorer {name!r} (choose from {', '.join(SCORERS)})")


LLMLINGUA2_DEFAULT = "microsoft/llmlingua-2-xlm-roberta-large-meetingbank"
