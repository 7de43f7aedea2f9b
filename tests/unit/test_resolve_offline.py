"""A hub id is resolved from the local cache only when huggingface_hub is in offline mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenskip.base_model.resolve import resolve_hub
from tokenskip.core.errors import TokenSkipError, exit_code_of


@pytest.mark.parametrize("offline", [True, False])
def test_hub_snapshot_is_local_only_in_huggingface_hubs_offline_mode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, offline: bool
) -> None:
    import huggingface_hub
    from huggingface_hub import constants

    calls = []

    def snapshot_download(name: str, revision: str | None, local_files_only: bool) -> str:
        calls.append(local_files_only)
        return str(tmp_path / "snapshots" / "abc123")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    record = resolve_hub("org/model", "main")
    assert calls == [offline]
    assert record["path"].endswith("abc123") and record["snapshot_revision"] == "abc123"


def test_an_uncached_hub_id_offline_is_one_clear_error() -> None:
    with pytest.raises(TokenSkipError) as info:
        resolve_hub("org/not-cached-anywhere", None)  # tests run with HF_HUB_OFFLINE=1
    assert str(info.value).startswith("model.name: org/not-cached-anywhere: not in the local Hugging Face cache")
    assert exit_code_of(info.value) == 2


@pytest.mark.parametrize(
    ("error", "expected"),
    [("RepositoryNotFoundError", "not a model on the Hugging Face hub"), ("ConnectionError", None)],
)
def test_online_an_unknown_id_is_an_error_and_a_network_failure_is_recorded(
    monkeypatch: pytest.MonkeyPatch, error: str, expected: str | None
) -> None:
    import httpx2  # huggingface_hub's HTTP client
    import huggingface_hub
    import requests
    from huggingface_hub import constants, errors

    def snapshot_download(name: str, revision: str | None, local_files_only: bool) -> str:
        if error == "RepositoryNotFoundError":
            response = httpx2.Response(404, request=httpx2.Request("GET", "https://huggingface.co/api/models/org/model"))
            raise errors.RepositoryNotFoundError("404 Client Error: Repository Not Found", response=response)
        raise requests.ConnectionError("Max retries exceeded")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    if expected is None:
        record = resolve_hub("org/model", None)
        assert record["path"] is None and record["snapshot_error"] == "Max retries exceeded"
        return
    with pytest.raises(TokenSkipError, match=expected):
        resolve_hub("org/model", None)
