"""A hub id is resolved from the local cache only when huggingface_hub is in offline mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenskip.base_model.resolve import resolve_hub


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


def test_an_uncached_hub_id_offline_is_recorded_with_the_reason() -> None:
    record = resolve_hub("org/not-cached-anywhere", None)  # tests run with HF_HUB_OFFLINE=1
    assert record["path"] is None and record["source"] == "hub" and record["snapshot_error"]
