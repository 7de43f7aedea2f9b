"""Atomic file writes, and JSON, JSON Lines and YAML reading and writing with precise error
messages (file, line, field)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import yaml

from tokenskip.core.errors import TokenSkipError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[TextIO]:
    """Open a temp file next to ``path``; rename it over ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.chmod(tmp, 0o666 & ~_current_umask())
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_dir(staged: str | Path, target: str | Path) -> None:
    """Swap a finished ``staged`` folder in for ``target``: the old folder is renamed aside first
    and removed after, so ``target`` is never a half-written or half-deleted folder."""
    staged, target = Path(staged), Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staged.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_dir(target: str | Path) -> Iterator[Path]:
    """A fresh folder next to ``target`` to write into; swapped in for ``target`` by
    :func:`replace_dir` when the block succeeds, deleted when it raises. The one way a stage
    replaces an output folder, so no reader ever sees a half-written one."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(staged, 0o777 & ~_current_umask())
    try:
        yield staged
        replace_dir(staged, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in chunks."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def folder_digests(folder: str | Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` by relative path, sorted; hidden names (.cache/...)
    skipped. What the checkpoints and the registry key a model folder by: its content, not its
    path, sizes or mtimes."""
    root = Path(folder)
    digests = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            digests[relative.as_posix()] = file_sha256(path)
    return digests


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records as JSON Lines atomically; return how many were written."""
    count = 0
    with atomic_open(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def first_non_finite(payload: Any, where: str = "") -> tuple[str, float] | None:
    """(dotted key, value) of the first NaN or infinite number in ``payload`` (list items by
    index); None when every number is finite."""
    if isinstance(payload, float):
        return None if math.isfinite(payload) else (where or "<root>", payload)
    if isinstance(payload, dict):
        items: Iterable[tuple[Any, Any]] = payload.items()
    elif isinstance(payload, list | tuple):
        items = enumerate(payload)
    else:
        return None
    for key, value in items:
        found = first_non_finite(value, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def nulls_for_non_finite(payload: Any) -> Any:
    """``payload`` with every NaN or infinite number replaced by None (JSON null: not measured)."""
    if isinstance(payload, float):
        return payload if math.isfinite(payload) else None
    if isinstance(payload, dict):
        return {key: nulls_for_non_finite(value) for key, value in payload.items()}
    if isinstance(payload, list | tuple):
        return [nulls_for_non_finite(value) for value in payload]
    return payload


def write_json(path: str | Path, payload: Any) -> None:
    """Write one JSON document atomically, pretty-printed with sorted keys.

    JSON has no NaN or Infinity: a non-finite number is one TokenSkipError naming the file and the
    key, and nothing is written (a writer that means "not measured" writes None:
    :func:`nulls_for_non_finite`)."""
    found = first_non_finite(payload)
    if found is not None:
        key, value = found
        raise TokenSkipError(f"{path}: {key}: not a finite number ({value}); JSON has no NaN or Infinity")
    with atomic_open(path) as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
        handle.write("\n")


def _not_utf8(source: Path) -> TokenSkipError:
    """One line naming the file, line and column of the first byte that is not UTF-8."""
    data = source.read_bytes()
    try:
        data.decode("utf-8")
        start = len(data)  # not reached: the caller saw a decoding error
    except UnicodeDecodeError as exc:
        start = exc.start
    head = data[:start]
    line_no = len(head.splitlines()) + (not head or head.endswith((b"\n", b"\r")))  # text-mode lines
    column = start - max(head.rfind(b"\n"), head.rfind(b"\r"))
    byte = data[start : start + 1].hex() or "??"
    return TokenSkipError(f"{source}:{line_no}: not valid UTF-8 (byte {column} of the line is 0x{byte})")


def _parse_line(source: Path, line_no: int, line: str, needed: tuple[str, ...]) -> dict[str, Any]:
    """One JSON Lines record: a JSON object holding every ``needed`` field."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TokenSkipError(f"{source}:{line_no}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise TokenSkipError(f"{source}:{line_no}: record is not a JSON object")
    for field in needed:
        if field not in record or record[field] is None:
            raise TokenSkipError(f"{source}:{line_no}: missing field '{field}'")
    return record


def read_jsonl(path: str | Path, required: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Read a JSON Lines file; every record must be an object holding the ``required`` fields.

    Raises TokenSkipError naming the file, the line number and the field on any defect
    (bytes that are not UTF-8 included), and on an empty file.
    """
    source = Path(path)
    if not source.is_file():
        raise TokenSkipError(f"{source}: file not found")
    needed = tuple(required)
    records: list[dict[str, Any]] = []
    try:
        with source.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if line.strip():
                    records.append(_parse_line(source, line_no, line, needed))
    except UnicodeDecodeError:
        raise _not_utf8(source) from None
    if not records:
        raise TokenSkipError(f"{source}: empty file (no records)")
    return records


def read_text(path: str | Path) -> str:
    """A text file as UTF-8; bytes that are not UTF-8 are one TokenSkipError naming the line."""
    source = Path(path)
    try:
        return source.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _not_utf8(source) from None


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently; DVC refuses the file): the project's one YAML loader."""


class DuplicateKey(yaml.constructor.ConstructorError):
    """A key given twice in one YAML mapping."""


def _unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: construct_mapping says so
            break
        if first is not None:
            message = f"duplicate key {key!r} (first on line {first})"
            raise DuplicateKey(None, None, message, key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_yaml(path: str | Path) -> object:
    """A YAML file parsed with :class:`UniqueKeyLoader`; a missing file, bytes that are not UTF-8,
    invalid YAML or a duplicate key is one TokenSkipError naming the file and the line."""
    source = Path(path)
    if not source.is_file():
        raise TokenSkipError(f"{source}: file not found")
    try:
        return yaml.load(read_text(source), Loader=UniqueKeyLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else str(source)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, DuplicateKey):
            raise TokenSkipError(f"{where}: {problem}") from None
        raise TokenSkipError(f"{where}: not valid YAML ({problem})") from None


def read_json(path: str | Path) -> Any:
    """Read one JSON document, with a clear error for a missing, malformed or non-UTF-8 file."""
    source = Path(path)
    if not source.is_file():
        raise TokenSkipError(f"{source}: file not found")
    try:
        return json.loads(source.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise _not_utf8(source) from None
    except json.JSONDecodeError as exc:
        raise TokenSkipError(f"{source}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
