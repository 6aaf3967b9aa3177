"""Files in the data directory: raw uploads, parsed logs and prepared project data as Parquet, model files.

Paths stored in the database are relative to the data directory, so a data directory can be moved. Files are
written under a temporary name and renamed into place, so a crash never leaves a half-written file behind.

The data directory holds other people's logs and the API token: it is made private to its owner (``0700``, so
nothing inside can be reached by another user whatever its own mode), and the files written here are ``0600``.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pandas as pd

from prcore_core.preparation import PreparedLog

#: Modes of the data directory and of the files written into it.
PRIVATE_DIRECTORY, PRIVATE_FILE = 0o700, 0o600


class Storage:
    """The data directory's file layout."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
        self.root.chmod(PRIVATE_DIRECTORY)  # also a directory made before, or under a permissive umask

    def path(self, relative: str) -> Path:
        return self.root / relative

    def new_event_log_dir(self) -> str:
        """A fresh directory for one upload (named by a random id until the database row exists)."""
        relative = f"event_logs/{uuid.uuid4().hex}"
        self.path(relative).mkdir(parents=True)
        return relative

    def write_bytes(self, relative: str, data: bytes) -> str:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        tmp.chmod(PRIVATE_FILE)
        tmp.replace(target)
        return relative

    def write_frame(self, relative: str, frame: pd.DataFrame) -> str:
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        frame.to_parquet(tmp, index=False)
        tmp.chmod(PRIVATE_FILE)
        tmp.replace(target)
        return relative

    def read_frame(self, relative: str) -> pd.DataFrame:
        return pd.read_parquet(self.path(relative))

    def remove(self, relative: str | None) -> None:
        if not relative:
            return
        target = self.path(relative)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)

    def remove_orphans(self, referenced: set[str], min_age_seconds: float = 600.0) -> list[str]:
        """Remove what a crash left behind: upload, result and project directories nothing in the database refers
        to, and half-written ``*.tmp`` files. Only what is older than ``min_age_seconds`` goes, so that an upload
        another process is writing right now is left alone. Returns the removed paths (relative)."""
        import time

        cutoff = time.time() - min_age_seconds
        removed = []
        for group in ("event_logs", "results", "projects"):
            directory = self.root / group
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                relative = f"{group}/{entry.name}"
                if relative not in referenced and entry.stat().st_mtime < cutoff:
                    self.remove(relative)
                    removed.append(relative)
        for tmp in self.root.rglob("*.tmp"):
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink(missing_ok=True)
                removed.append(str(tmp.relative_to(self.root)))
        return removed

    # -- projects ------------------------------------------------------------------------------------------------
    def project_dir(self, project_id: int) -> str:
        return f"projects/{project_id}"

    def write_prepared(self, project_id: int, run: int, prepared: PreparedLog) -> str:
        """Store a project's prepared data; returns the directory (relative)."""
        relative = f"{self.project_dir(project_id)}/run-{run}"
        self.write_frame(f"{relative}/events.parquet", prepared.events)
        split = pd.Series("training", index=prepared.training_cases.astype(str), name="SPLIT")
        split = pd.concat([split, pd.Series("held_out", index=prepared.held_out_cases.astype(str), name="SPLIT")])
        labels = prepared.labels.copy()
        labels.index = labels.index.astype(str)
        cases = labels.join(split, how="outer")
        cases.index.name = "CASE_ID"
        self.write_frame(f"{relative}/cases.parquet", cases.reset_index())
        return relative

    def model_path(self, project_id: int, run: int, plugin_key: str) -> str:
        return f"{self.project_dir(project_id)}/run-{run}/models/{plugin_key}.pkl"

    def read_prepared(self, relative: str, attributes, split: dict) -> PreparedLog:
        """Load what :meth:`write_prepared` stored."""
        from prcore_core.dataset import Attribute

        events = self.read_frame(f"{relative}/events.parquet")
        cases = self.read_frame(f"{relative}/cases.parquet").set_index("CASE_ID")
        cases.index = cases.index.astype("string")
        events["CASE_ID"] = events["CASE_ID"].astype("string")
        split_time = split.get("split_time") if split else None
        return PreparedLog(
            events=events,
            labels=cases.drop(columns=["SPLIT"]),
            attributes=tuple(Attribute(**a) for a in attributes or ()),
            training_cases=pd.Index(cases.index[cases["SPLIT"] == "training"]),
            held_out_cases=pd.Index(cases.index[cases["SPLIT"] == "held_out"]),
            split_time=pd.Timestamp(split_time) if split_time else None,
        )
