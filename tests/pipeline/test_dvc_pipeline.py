"""dvc.yaml wiring: params keys exist, metrics are uncached JSON reports, the Pareto plot, the
stage graph; and `dvc repro` in a clean clone runs, then is a no-op the second time."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.pipeline.flow_helpers import DVC, run
from tokenskip.cli import STAGE_COMMANDS
from tokenskip_flows.support import read_dvc_stages


def _dvc(repo_root: Path) -> dict:
    return yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]


def _entries(items: list) -> list[tuple[str, dict]]:
    out = []
    for item in items or []:
        if isinstance(item, dict):
            out += [(k, v or {}) for k, v in item.items()]
        else:
            out.append((item, {}))
    return out


def test_stages_are_stage_commands_in_their_order_and_run_their_own_command(repo_root: Path) -> None:
    from tokenskip.cli import app

    stages = _dvc(repo_root)
    assert list(stages) == [name for name in STAGE_COMMANDS if name in stages]  # dvc.yaml order = the CLI's
    commands = {c.name for c in app.registered_commands}
    for name, stage in stages.items():
        assert name in STAGE_COMMANDS, name
        assert stage["cmd"].startswith(f"tokenskip {name} "), stage["cmd"]
        assert f"--report reports/{name}.json" in stage["cmd"]
        assert name in commands, f"dvc.yaml stage {name} has no `tokenskip {name}` command"


def test_params_name_existing_keys(repo_root: Path) -> None:
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    for name, stage in _dvc(repo_root).items():
        for key, _ in _entries(stage.get("params")):
            node = params
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{name}: params key {key} not in params.yaml"
                node = node[part]


def test_metrics_are_uncached_reports_and_pareto_is_a_plot(repo_root: Path) -> None:
    stages = _dvc(repo_root)
    for name, stage in stages.items():
        metrics = _entries(stage.get("metrics"))
        extra = {"register": "reports/metrics.json",  # the headline of `dvc metrics show`
                 "validate": "reports/validate-timing.json"}  # wall time, kept out of the report finetune reads
        also = [(extra[name], {"cache": False})] if name in extra else []
        assert metrics == [(f"reports/{name}.json", {"cache": False}), *also], f"{name}: {metrics}"
    if "evaluate" in stages:
        plots = dict(_entries(stages["evaluate"].get("plots")))
        assert plots["reports/pareto.csv"]["x"] == "mean_tokens"
        assert plots["reports/pareto.csv"]["y"] == "accuracy"
        assert plots["reports/pareto.csv"]["template"] == "pareto"  # .dvc/plots/pareto.json: colour = method


def test_dvc_plots_draw_one_series_per_method_with_error_bars(repo_root: Path) -> None:
    import json

    spec = json.loads(run([DVC, "plots", "show", "--show-vega", "reports/pareto.csv"], repo_root).stdout)
    assert spec["encoding"]["color"]["field"] == "method"
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["line", "errorbar"]
    methods = {row["method"] for row in spec["data"]["values"]}
    assert {"tokenskip", "truncation", "original", "be_concise"} <= methods


def test_dvc_dag_is_the_stage_chain_in_dvc_yaml_order(repo_root: Path) -> None:
    """The flow runs the stages in dvc.yaml's order (read_dvc_stages): DVC's graph is that chain."""
    dot = run([DVC, "dag", "--dot"], repo_root).stdout
    edges = set(re.findall(r'"([\w.-]+)"\s*->\s*"([\w.-]+)"', dot))
    present = read_dvc_stages(repo_root)
    for upstream, downstream in zip(present, present[1:], strict=False):
        assert (upstream, downstream) in edges, f"no edge {upstream} -> {downstream} in {sorted(edges)}"


# `dvc repro` in a clean clone, run, then a no-op: see test_flow_deployment.py (the flow's run of
# the clone is the first `dvc repro`; one clone and one training run serve both checks).


def test_every_option_of_a_stage_command_is_an_option_of_its_tokenskip_command(repo_root: Path) -> None:
    """dvc.yaml's commands, read from dvc.yaml itself, parse against the Typer commands they call."""
    import shlex

    import typer.main

    from tokenskip.cli import app

    group = typer.main.get_command(app)
    for name, stage in _dvc(repo_root).items():
        words = shlex.split(stage["cmd"])
        command = group.commands[words[1]]
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        used = {word.split("=", 1)[0] for word in words[2:] if word.startswith("--")}
        assert used <= known, f"{name}: {sorted(used - known)} are not options of `tokenskip {words[1]}`"
        context = command.make_context(words[1], words[2:], resilient_parsing=False)
        assert context.params  # every value parses (paths, flags) as the command declares it
