"""The embedded default's base model: a tiny Qwen2 causal LM and its tokenizer, trained from scratch.

``tokenizer`` builds the byte-level BPE tokenizer (one token per digit, punctuation split,
Qwen-style chat template), ``model`` the Qwen2 config, ``train`` the packed, step-budgeted
training loop and ``evaluate`` the held-out greedy accuracy.
"""
