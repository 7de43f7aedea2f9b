"""What the user-facing docs name must exist, and what they claim about the committed run must hold.

Read: README.md, docs/*.md and the comments of params.yaml. Checked:

- module names (``tokenskip.x.y``, ``tokenskip_flows.x``, an attribute after the module) and the
  string names the code defines (tag names, the entry-point group);
- repository paths (``src/...``, ``flows/x.py``, ``tests/x.py::test_name``, ...): present, or
  ignored by git (the outputs a run writes);
- commands (``tokenskip <cmd>`` in code) and the ``--options`` written after them;
- params keys (``section.key``) against the pydantic models;
- relative links and their ``#anchors``, and params.yaml's ``(README: Section)`` pointers;
- claims on the promotion: whether there is a champion, and which ratio (and the challenger's).
"""

from __future__ import annotations

import functools
import re
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenskip.core.params import Params

FILE_EXTENSIONS = {"json", "jsonl", "yaml", "yml", "md", "py", "csv", "png", "db", "lock", "txt", "toml",
                   "html", "log", "sh", "dvc", "safetensors", "cfg", "pid", "port", "bin"}
MODULE = re.compile(r"(?<![\w./-])tokenskip(?:_flows)?(?:\.[A-Za-z_]\w*)+")
PATH = re.compile(r"(?<![\w./~-])(?:src|flows|tests|docs|bench|experiments|infra|profiles|mlflow)/[\w./{},:-]*")
COMMAND = re.compile(r"(?:^|[\s/(`|])tokenskip\s+([a-z][\w-]*)((?:[^;&|#`\n])*)")
OPTION = re.compile(r"(?<![\w-])--[a-z][\w-]*")
SECTIONS = "|".join(f.alias or name for name, f in Params.model_fields.items())
PARAM = re.compile(rf"(?<![\w./-])({SECTIONS})\.([A-Za-z_]\w*)(?![\w(]|\.\w)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SPAN = re.compile(r"`([^`\n]+)`")
GLOBAL_OPTIONS = {"--help", "--log-level", "--verbose"}
CONDITIONAL = re.compile(r"\b(when|if|unless|would|earlier|before|without|former)\b", re.I)
NO_CHAMPION = re.compile(r"promotes (nothing|no version)|nothing is promoted|no `?@?champion`?\b|"
                         r"`?@champion`? does not exist", re.I)
PROMOTES = re.compile(r"\b(?:gate|default|run)\b[^.;]*?\bpromotes g\s*=\s*([0-9.]+)", re.I)
ALIAS_CLAIM = re.compile(r"\bis the `?(champion|challenger)`?", re.I)
G_VALUE = re.compile(r"\bg\s*=\s*([0-9]+(?:\.[0-9]+)?)")


@dataclass(frozen=True)
class Doc:
    """One document: its path relative to the docs root, its text, and the parts that are code."""

    name: str
    text: str
    code: list[str]


def markdown_doc(name: str, text: str) -> Doc:
    """A markdown document: code is its fenced blocks' lines and its inline code spans."""
    code, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced:
            code.append(line)
        else:
            code += SPAN.findall(line)
    return Doc(name, text, code)


def documents(root: Path) -> Iterator[Doc]:
    """README.md, docs/*.md and params.yaml's comments (all of a comment counts as code)."""
    yield markdown_doc("README.md", (root / "README.md").read_text(encoding="utf-8"))
    for path in sorted((root / "docs").glob("*.md")):
        yield markdown_doc(f"docs/{path.name}", path.read_text(encoding="utf-8"))
    comments = [line.split("#", 1)[1] for line in (root / "params.yaml").read_text(encoding="utf-8").splitlines()
                if "#" in line and not re.match(r'^\s*\w+: "[^"]*#', line)]
    yield Doc("params.yaml", "\n".join(comments), comments)


class Repo:
    """What exists in the repository: files, modules, string names, commands and their options."""

    def __init__(self, root: Path) -> None:
        self.root = root
        sources = [*(root / "src").rglob("*.py"), *(root / "flows").glob("*.py"), root / "pyproject.toml"]
        self.strings = "\n".join(p.read_text(encoding="utf-8") for p in sources)
        self._options: dict[str, set[str]] | None = None

    def path_exists(self, relative: str) -> bool:
        """In the working tree, or ignored by git (a run's outputs)."""
        if (self.root / relative).exists():
            return True
        for candidate in (relative, relative.rstrip("/") + "/"):  # a folder pattern matches "x/" only
            if subprocess.run(["git", "check-ignore", "-q", candidate], cwd=self.root, check=False).returncode == 0:
                return True
        return False

    def module_problem(self, name: str) -> str | None:
        """None when ``name`` is a module (plus an attribute it defines) or a string the code names."""
        parts = name.split(".")
        if parts[-1] in FILE_EXTENSIONS or f'"{name}"' in self.strings or f"'{name}'" in self.strings:
            return None
        folder = self.root / "flows" if parts[0] == "tokenskip_flows" else self.root / "src" / "tokenskip"
        for i, part in enumerate(parts[1:], start=1):
            if (folder / part).is_dir():
                folder = folder / part
            elif (folder / f"{part}.py").is_file():
                rest = parts[i + 1:]
                source = (folder / f"{part}.py").read_text(encoding="utf-8")
                defined = not rest or re.search(rf"^\s*(?:def|class)\s+{rest[0]}\b|^{rest[0]}\s*[:=]", source, re.M)
                return None if defined else f"module {name}: {'.'.join(parts[:i + 1])} defines no {rest[0]}"
            else:
                return f"module {name}: no {'.'.join(parts[:i + 1])}"
        return None

    def commands(self) -> dict[str, set[str]]:
        """Every tokenskip command and the options it takes (pyproject's entry points + the stages)."""
        if self._options is None:
            import typer

            from tokenskip.cli import STAGE_COMMANDS, build_app

            project = tomllib.loads((self.root / "pyproject.toml").read_text(encoding="utf-8"))
            tools = project["project"]["entry-points"]["tokenskip.commands"]
            self._options = {}
            for name in [*STAGE_COMMANDS, *tools]:
                try:
                    group = typer.main.get_command(build_app([name]))
                    params = group.commands[name].params  # type: ignore[attr-defined]
                    self._options[name] = {o for p in params for o in (*p.opts, *p.secondary_opts)}
                except Exception:  # noqa: BLE001 - a command that does not load has no options to check
                    self._options[name] = set()
        return self._options


@functools.cache
def repository(root: Path) -> Repo:
    """One Repo per root (loading the commands' options takes a second)."""
    return Repo(root)


def _name_problems(doc: Doc, repo: Repo) -> Iterator[str]:
    for name in sorted(set(MODULE.findall(doc.text))):
        if problem := repo.module_problem(name):
            yield problem
    for found in sorted(set(PATH.findall(doc.text))):
        path, _, test = found.rstrip(".,:)").partition("::")
        if any(c in path for c in "<>*$") or not path:
            continue
        for expanded in _expand(path):
            if not repo.path_exists(expanded):
                yield f"path {expanded}: not in the repository"
            elif test and expanded.endswith(".py") and not re.search(
                    rf"def {re.escape(test)}\b", (repo.root / expanded).read_text(encoding="utf-8")):
                yield f"test {expanded}::{test}: no such test"
    keys = {f.alias or n: {g.alias or k for k, g in f.annotation.model_fields.items()}
            for n, f in Params.model_fields.items()}
    for section, key in sorted(set(PARAM.findall(doc.text))):
        if key not in FILE_EXTENSIONS and key not in keys[section]:
            yield f"param {section}.{key}: not a key of params.yaml"


def _expand(path: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", path)
    if not match:
        return [path]
    return [e for part in match[1].split(",") for e in _expand(path[:match.start()] + part + path[match.end():])]


def _command_problems(doc: Doc, repo: Repo) -> Iterator[str]:
    for code in doc.code:
        for command, rest in COMMAND.findall(code):
            options = repo.commands().get(command)
            if options is None:
                yield f"command tokenskip {command}: no such command"
                continue
            for option in OPTION.findall(rest):
                if option not in options | GLOBAL_OPTIONS and options:
                    yield f"option tokenskip {command} {option}: no such option"


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(text: str) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S), re.M)
    return {_slug(h) for h in headings}


def _link_problems(doc: Doc, root: Path, repo: Repo) -> Iterator[str]:
    if doc.name == "params.yaml":  # comments point at README sections by name: "(README: Results)"
        readme = _anchors((root / "README.md").read_text(encoding="utf-8"))
        for section in re.findall(r"\(README: ([^)]+)\)", doc.text):
            if _slug(section) not in readme:
                yield f"README section {section!r}: no such heading"
        return
    for target in LINK.findall(doc.text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        where = (root / doc.name).parent / file if file else root / doc.name
        relative = where.resolve().relative_to(root.resolve()) if where.resolve().is_relative_to(
            root.resolve()) else None
        found = where if where.exists() else (repo.root / relative if relative else None)
        if found is None or not found.exists():
            yield f"link {target}: no {file}"
        elif anchor and found.suffix == ".md" and anchor not in _anchors(found.read_text(encoding="utf-8")):
            yield f"link {target}: no heading #{anchor} in {file or doc.name}"


def clauses(text: str) -> Iterator[str]:
    """Prose clauses (tables and code blocks left out), split at sentence ends and semicolons."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    prose = "\n".join(line for line in prose.splitlines() if not line.lstrip().startswith("|"))
    for paragraph in re.split(r"\n\s*\n", prose):
        yield from re.split(r"(?<=[.;])\s+(?=[A-Z*`(g])|;\s*", " ".join(paragraph.split()))


def claim_problems(doc: Doc, aliases: dict[str, float]) -> Iterator[str]:
    """Clauses that contradict the register report: ``aliases`` maps champion / challenger to a ratio."""
    champion = aliases.get("champion")
    for clause in clauses(doc.text):
        if CONDITIONAL.search(clause):
            continue
        if NO_CHAMPION.search(clause) and champion is not None:
            yield f"claim {clause!r}: the reports have a champion (g = {champion:g})"
        for ratio in PROMOTES.findall(clause):
            if champion is None or float(ratio.rstrip(".")) != champion:
                yield f"claim {clause!r}: the gate promoted {'nothing' if champion is None else f'g = {champion:g}'}"
        for alias in ALIAS_CLAIM.findall(clause):
            named = {float(g) for g in G_VALUE.findall(clause)}
            if len(named) == 1 and named != {aliases.get(alias.lower())}:
                yield f"claim {clause!r}: {alias.lower()} is {aliases.get(alias.lower())}"


def problems(root: Path, repo_root: Path, register: dict) -> list[str]:
    """Every stale name and contradicted claim of the documents under ``root`` (code and files looked
    up in ``repo_root``), each prefixed with its document."""
    repo = repository(repo_root)
    aliases = {v["alias"]: float(v["ratio"]) for v in register.get("versions") or [] if v.get("alias")}
    found = []
    for doc in documents(root):
        for problem in (*_name_problems(doc, repo), *_command_problems(doc, repo),
                        *_link_problems(doc, root, repo), *claim_problems(doc, aliases)):
            found.append(f"{doc.name}: {problem}")
    return found
