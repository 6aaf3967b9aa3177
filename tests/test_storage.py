"""The data directory: private to its owner, files written whole and readable by nobody else."""

from __future__ import annotations

import stat

import pandas as pd

from prcore_core import PrCore
from prcore_core.storage import Storage


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_directory_is_private_and_its_files_are_the_owners(tmp_path):
    root = tmp_path / "data"
    root.mkdir(mode=0o755)  # made before, world-readable
    storage = Storage(root)
    assert mode(root) == 0o700
    raw = storage.write_bytes("event_logs/a/raw.csv", b"case,activity\n1,A\n")
    frame = storage.write_frame("event_logs/a/log.parquet", pd.DataFrame({"a": [1]}))
    assert mode(storage.path(raw)) == 0o600 and mode(storage.path(frame)) == 0o600
    assert not list(root.rglob("*.tmp"))


def test_the_facade_keeps_uploads_private(tmp_path, demo):
    with PrCore(data_dir=tmp_path / "fresh") as core:
        log = core.upload_event_log(demo.events.to_csv(index=False).encode(), filename="demo.csv")
        assert mode(tmp_path / "fresh") == 0o700
        files = [p for p in (tmp_path / "fresh" / "event_logs").rglob("*") if p.is_file()]
        assert files and all(mode(p) == 0o600 for p in files), [(p.name, oct(mode(p))) for p in files]
        assert log.id == 1
