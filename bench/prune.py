"""Our LLMLingua-2 scorer vs the ``llmlingua`` package's PromptCompressor, same classifier, same CoTs.

Both run the same randomly initialised small XLMRobertaForTokenClassification (built offline into
bench/out/, folder name containing "xlm-roberta-large" because llmlingua keys its word rules on it)
on the same 200 CoTs at rate g with digits force-kept. Prints ONE JSON line:
- ``speedup``: texts/s of ours (scoring + selection, batched, dynamic padding) over llmlingua's
  (one ``compress_prompt`` call per text, every chunk padded to 512 tokens);
- ``kept_match``: share of texts whose kept words are identical when our word probabilities go
  through llmlingua's own keep rule (token-weighted percentile threshold) with the same tokenizer;
- ``own_rule_kept_match``: the same with our rule (top-g share of target tokens, forced words
  first), which differs by design: budget vs percentile threshold.
llmlingua is not a project dependency: it is installed with --no-deps into bench/out/llmlingua-site
and imported from there (it shares torch/transformers with the venv). Its tiktoken GPT-3.5 encoding
cannot be downloaded offline, so its token counter is the same XLM-R tokenizer (that counter only
weights the percentile). The CPU is shared with other engineers: figures are indicative.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tokenskip.prune.pruning import forced_mask, prune_to_ratio, split_words
from tokenskip.prune.scorers import LLMLingua2Scorer, load_token_classifier

OUT = Path("bench/out")
SITE = OUT / "llmlingua-site"


def load_texts(n: int) -> list[str]:
    """CoTs from the generate stage when present, else the synthetic reference solutions."""
    cot = Path("artifacts/generate/cot.jsonl")
    if cot.is_file():
        texts = [json.loads(line)["cot"] for line in cot.read_text(encoding="utf-8").splitlines()]
        if len(texts) >= n:
            return texts[:n]
    rows = Path("data/synthetic/train.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    return [json.loads(r)["answer"].rsplit("####", 1)[0].strip() for r in rows]


def build_token_classifier(folder: Path, texts: Sequence[str], vocab_size: int = 2000) -> None:
    """Save a random 2-label ``XLMRobertaForTokenClassification`` (hidden 64, 2 layers) to ``folder``
    with an ``XLMRobertaTokenizer`` whose Unigram pieces are the texts' most frequent words
    (``▁word`` after a space, as SentencePiece writes them) and every character seen."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification, XLMRobertaTokenizer

    counts: Counter[str] = Counter()
    chars = {"▁"}
    for text in texts:
        for match in re.finditer(r"\w+|[^\w\s]", text):
            spaced = match.start() == 0 or text[match.start() - 1].isspace()
            counts[("▁" if spaced else "") + match.group()] += 1
            chars.update(match.group())
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids 0..4
    frequent = [piece for piece, _ in counts.most_common(max(vocab_size - len(specials) - len(chars), 0))]
    total = sum(counts.values()) + len(chars)
    vocab = [(piece, 0.0) for piece in specials] + [(p, math.log(counts[p] / total)) for p in frequent]
    vocab += [(ch, math.log(0.5 / total)) for ch in sorted(chars - set(frequent))]
    tokenizer = XLMRobertaTokenizer(vocab=vocab)
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=514, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, num_labels=2,
    )
    XLMRobertaForTokenClassification(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def import_llmlingua(tokenizer):
    """Import llmlingua from its own site folder; count 'OpenAI' tokens with ``tokenizer``."""
    if not (SITE / "llmlingua").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(SITE),
                        "llmlingua==0.2.2", "nltk", "tiktoken"], check=True)
    sys.path.insert(0, str(SITE.resolve()))
    import tiktoken

    class Counter:
        def encode(self, text: str) -> list[int]:
            return tokenizer(text, add_special_tokens=False)["input_ids"]

    tiktoken.encoding_for_model = lambda name: Counter()
    from llmlingua import PromptCompressor

    return PromptCompressor


def llmlingua_rule(text: str, probs: list[float], rate: float, tokenizer) -> list[str]:
    """llmlingua-2's keep rule on our word probabilities: digit words prob 1.0, threshold =
    percentile of token-weighted probs at int(100 * (1 - rate) + 1), keep prob > threshold."""
    words = split_words(text)
    probs = [1.0 if any(c.isdigit() for c in w.text) else p for w, p in zip(words, probs, strict=True)]
    pieces = [("▁" if w.space else "") + w.text for w in words]
    counts = [len(tokenizer(piece, add_special_tokens=False)["input_ids"]) for piece in pieces]
    weighted = [p for p, c in zip(probs, counts, strict=True) for _ in range(c)]
    threshold = np.percentile(weighted, int(100 * (1 - rate) + 1))
    pairs = zip(words, probs, strict=True)
    return [w.text for w, p in pairs if p > threshold or (threshold == 1.0 and p == threshold)]


def main() -> None:
    """Build the classifier, run both compressors, print the figures."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    texts = load_texts(args.n)
    folder = OUT / "xlm-roberta-large-tiny"
    if not (folder / "config.json").is_file():
        build_token_classifier(folder, texts)
    model, tokenizer = load_token_classifier(str(folder), "cpu")

    started = time.perf_counter()
    scores = LLMLingua2Scorer(model, tokenizer, batch_size=50).score(texts)
    ours_rule = [llmlingua_rule(t, s, args.rate, tokenizer) for t, s in zip(texts, scores, strict=True)]
    ours_s = time.perf_counter() - started
    own = []
    for text, word_scores in zip(texts, scores, strict=True):
        words = split_words(text)
        result = prune_to_ratio(words, word_scores, args.rate, forced_mask(words, True, []))
        own.append([w.text for w, k in zip(words, result.kept, strict=True) if k])

    compressor = import_llmlingua(tokenizer)(model_name=str(folder), device_map="cpu", use_llmlingua2=True)
    started = time.perf_counter()
    theirs = [compressor.compress_prompt(t, rate=args.rate, force_reserve_digit=True)["compressed_prompt"]
              for t in texts]
    theirs_s = time.perf_counter() - started
    theirs_words = [[w.text for w in split_words(t)] for t in theirs]
    n, n_words = len(texts), sum(len(split_words(t)) for t in texts)
    print(json.dumps({
        "bench": "prune", "n_texts": n, "rate": args.rate, "threads": args.threads,
        "ours_texts_per_s": round(n / ours_s, 2), "llmlingua_texts_per_s": round(n / theirs_s, 2),
        "speedup": round(theirs_s / ours_s, 2),
        "kept_match": round(sum(a == b for a, b in zip(ours_rule, theirs_words, strict=True)) / n, 3),
        "own_rule_kept_match": round(sum(a == b for a, b in zip(own, theirs_words, strict=True)) / n, 3),
        "kept_share_llmlingua": round(sum(map(len, theirs_words)) / n_words, 3),
        "kept_share_own_rule": round(sum(map(len, own)) / n_words, 3),
        "note": "CPU shared with other engineers (2 cores): indicative figures",
    }))


if __name__ == "__main__":
    main()
