"""Pareto outputs: one CSV row per condition with its nominal g, and a PNG plot."""

from __future__ import annotations

import csv

from tokenskip.evaluate.pareto import baseline_ratio, pareto_rows, plot_pareto, write_pareto_csv


def metrics(acc: float, tokens: float) -> dict:
    return {"accuracy": acc, "accuracy_ci": [acc - 0.05, acc + 0.05], "mean_cot_tokens": tokens,
            "actual_ratio": 1.0, "latency_s": 0.1, "throughput_tok_s": 100.0}


REPORT = {
    "n_test": 10,
    "ratios": {"0.5": metrics(0.6, 50), "1.0": metrics(0.8, 100), "0.7": metrics(0.75, 70)},
    "baselines": {"original": metrics(0.82, 98), "be_concise": metrics(0.7, 90),
                  "lc_prompt_0.5": metrics(0.5, 80), "truncation_0.5": metrics(0.05, 49),
                  "truncation_0.7": metrics(0.2, 68)},
}


def test_baseline_ratio_reads_the_nominal_g():
    assert baseline_ratio("original") == 1.0
    assert baseline_ratio("truncation_0.7") == 0.7
    assert baseline_ratio("lc_prompt_0.5") == 0.5
    assert baseline_ratio("be_concise") is None


def test_rows_put_tokenskip_first_from_longest_to_shortest():
    rows = pareto_rows(REPORT)
    assert [(r["method"], r["g"]) for r in rows[:3]] == [("tokenskip", 1.0), ("tokenskip", 0.7), ("tokenskip", 0.5)]
    assert {"method": "truncation", "g": 0.7, "mean_tokens": 68, "accuracy": 0.2,
            "accuracy_low": 0.2 - 0.05, "accuracy_high": 0.2 + 0.05} in rows
    assert len(rows) == 3 + 5


def test_csv_has_the_plot_columns_and_blank_g_where_none(tmp_path):
    path = tmp_path / "pareto.csv"
    write_pareto_csv(path, pareto_rows(REPORT))
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["method", "g", "mean_tokens", "accuracy", "accuracy_low", "accuracy_high"]
    concise = next(r for r in rows if r["method"] == "be_concise")
    assert concise["g"] == "" and float(concise["accuracy"]) == 0.7


def test_plot_writes_a_png_with_one_colour_per_method(tmp_path, monkeypatch):
    import matplotlib.axes

    drawn = []
    original = matplotlib.axes.Axes.errorbar

    def spy(self, *args, **kwargs):
        drawn.append((kwargs["label"], kwargs["color"], kwargs["yerr"]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", spy)
    path = tmp_path / "pareto.png"
    plot_pareto(path, pareto_rows(REPORT))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    labels = [label for label, _, _ in drawn]
    assert labels == ["tokenskip", "original", "be_concise", "lc_prompt_0.5", "truncation"]
    assert len({colour for _, colour, _ in drawn}) == len(labels)  # no two methods share a colour
    assert all(abs(e - 0.05) < 1e-9 for _, _, yerr in drawn for side in yerr for e in side)
