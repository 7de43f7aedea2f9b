"""A small, clean set of validate-stage inputs (cot.jsonl, pruned_<g>.jsonl, samples.jsonl)
that tests copy and break one defect at a time, and the word-level tokenizer they are counted in
(one token per whitespace-separated word: the recorded counts are word counts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenskip.core.prompts import format_completion, ratio_tag

RATIOS = [0.5, 0.6, 0.7, 0.8, 0.9]
EOS = "<|endoftext|>"
N_QUESTIONS = 24  # 4 samples per g in {0.5, ..., 0.9, 1.0}: an exactly uniform mix
UNK = "[UNK]"
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                 "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


FORCE_TOKENS = ("+", "-", "*", "/", "=", "$")  # prune.force_tokens (its default)


def _cot(index: int) -> list[str]:
    """Ten words (one token each): three numbers and one operator (four forced words)."""
    a, b = index + 2, index + 5
    return ["Tom", "has", str(a), "apples", "and", "buys", str(b), "more", "=", str(a + b)]


def is_forced(word: str) -> bool:
    """A word prune always keeps: a number (prune.force_digits) or one of FORCE_TOKENS."""
    return word.isdigit() or word in FORCE_TOKENS


def _compressed(words: list[str], ratio: float) -> list[str]:
    """Keep round(ratio * 10) words: every forced word, then the first other words, in order."""
    keep = round(ratio * len(words))
    others = keep - sum(is_forced(w) for w in words)
    kept = []
    for word in words:
        if is_forced(word):
            kept.append(word)
        elif others > 0:
            kept.append(word)
            others -= 1
    return kept


def make_records(n_questions: int = N_QUESTIONS) -> dict[str, list[dict[str, Any]]]:
    """Clean records, keyed by 'cot', 'pruned_<g>' and 'samples' (n_questions a multiple of 6
    keeps the ratio mix exactly uniform)."""
    records: dict[str, list[dict[str, Any]]] = {"cot": [], "samples": []}
    records.update({f"pruned_{g:g}": [] for g in RATIOS})
    options = [*RATIOS, 1.0]
    for i in range(n_questions):
        words, qid = _cot(i), f"q-{i:03d}"
        cot, gold = " ".join(words), words[-1]
        question = f"Tom has {i + 2} apples and buys {i + 5} more. How many?"
        records["cot"].append({
            "id": qid, "question": question, "gold": gold, "output": f"{cot}\nThe answer is {gold}.",
            "cot": cot, "prediction": gold, "correct": True, "cot_tokens": len(words),
        })
        compressed = {}
        for g in RATIOS:
            kept = _compressed(words, g)
            compressed[g] = " ".join(kept)
            records[f"pruned_{g:g}"].append({
                "id": qid, "ratio": g, "cot": cot, "compressed_cot": compressed[g], "cot_tokens": len(words),
                "compressed_tokens": len(kept), "forced_words": sum(is_forced(w) for w in words),
            })
        g = options[i % len(options)]
        prompt = f"<|im_start|>user\nSolve.\n{question}{ratio_tag(EOS, g)}<|im_end|>\n<|im_start|>assistant\n"
        records["samples"].append({
            "id": qid, "ratio": g, "prompt": prompt,
            "completion": format_completion(compressed.get(g, cot), gold),
        })
    return records


def resync_completions(records: dict[str, list[dict[str, Any]]]) -> None:
    """Rebuild every sample's completion from the records as they now are (after a test changed
    compressed CoTs on purpose): ``format_completion`` of the CoT pruned to its g (the generated CoT
    at g = 1.0) and the gold answer."""
    cots = {r["id"]: r for r in records["cot"]}
    compressed = {(r["id"], r["ratio"]): r["compressed_cot"]
                  for name, rows in records.items() if name.startswith("pruned_") for r in rows}
    for sample in records["samples"]:
        cot = cots[sample["id"]]
        text = cot["cot"] if sample["ratio"] >= 1.0 else compressed[(sample["id"], sample["ratio"])]
        sample["completion"] = format_completion(text, cot["gold"])


def plant_changed_number(records: dict[str, list[dict[str, Any]]]) -> None:
    """q-013's CoT buys .5 more apples (not 18) in every record (cot, pruned, samples); its CoT
    pruned to 0.5 reads '5' where the CoT reads '.5': a number changed by pruning."""
    for name, rows in records.items():
        for row in rows:
            if row["id"] == "q-013" and "cot" in row:
                row["cot"] = row["cot"].replace(" 18 ", " .5 ")
                if name.startswith("pruned_"):
                    row["compressed_cot"] = row["compressed_cot"].replace(" 18 ", " .5 ")
    resync_completions(records)
    row = records["pruned_0.5"][13]
    row["compressed_cot"] = row["compressed_cot"].replace(" .5 ", " 5 ")


def write_records(root: Path, records: dict[str, list[dict[str, Any]]]) -> tuple[Path, Path]:
    """Write records as artifacts/generate/cot.jsonl and artifacts/prune/*.jsonl under ``root``;
    return (cot path, pruned folder)."""
    cot_path = root / "generate" / "cot.jsonl"
    pruned_dir = root / "prune"
    for name, rows in records.items():
        path = cot_path if name == "cot" else pruned_dir / f"{name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return cot_path, pruned_dir


def write_word_tokenizer(folder: Path) -> Path:
    """Save a word-level tokenizer (every whitespace-separated word is one token, ``[UNK]`` when
    not in its tiny vocabulary) with a chat template into ``folder``, with a ``model.json`` pointer
    to itself: a ``--base`` folder that ``resolve_base_model`` and ``load_tokenizer`` accept."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate([UNK, EOS, "<|im_start|>", "<|im_end|>"])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token=UNK, eos_token=EOS, pad_token=EOS)
    tokenizer.chat_template = CHAT_TEMPLATE
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    (folder / "model.json").write_text(json.dumps({"name": "word-tokenizer", "path": str(folder)}),
                                       encoding="utf-8")
    return folder
