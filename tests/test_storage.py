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


def test_files_a_crash_left_behind_are_removed_at_start_and_fresh_ones_kept(tmp_path, demo):
    """Row 13 of the reliability issue: SIGKILL during an upload left its raw file and a ``.parquet.tmp`` behind."""
    import os
    import time

    root = tmp_path / "data"
    with PrCore(data_dir=root) as core:
        kept = core.upload_event_log(demo.to_csv(), filename="demo.csv")
    storage = Storage(root)
    old = [storage.write_bytes("event_logs/crashed/raw.csv", b"a,b\n"), "event_logs/crashed"]
    storage.write_bytes("event_logs/crashed/log.parquet.tmp", b"half")
    storage.write_bytes("results/LOSTKEY1/ongoing.csv", b"a,b\n")
    fresh = storage.write_bytes("event_logs/uploading-now/raw.csv", b"a,b\n")
    hour_ago = time.time() - 3600
    for path in [*old, "event_logs/crashed/log.parquet.tmp", "results/LOSTKEY1", "results/LOSTKEY1/ongoing.csv"]:
        os.utime(storage.path(path), (hour_ago, hour_ago))
    with PrCore(data_dir=root) as core:
        assert core.read_event_log_frame(kept.id).shape[0] == len(demo.events)
    assert not storage.path("event_logs/crashed").exists()
    assert not storage.path("results/LOSTKEY1").exists()
    assert storage.path(fresh).exists()  # another process may be writing it right now
