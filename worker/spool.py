"""A folder of records kept on local disk while the store cannot take them.

5C's report endpoint forgets what it hands over, so a fetched page is written here, and synced
to disk, before anything else happens to it; it is removed only once the store holds it
(tasks/reports.py). Each record is one JSON file of string fields, written under a temporary
name and renamed into place, so a reader never sees half a record. Records are read oldest
first. Several processes may share the folder: removing a record someone else removed first is
not an error, and the store deduplicates what two of them import at once.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from worker.errors import SpoolError

SUFFIX = ".json"


@dataclass(frozen=True)
class Spool:
    folder: Path

    def write(self, record: dict[str, str], *, now: datetime) -> Path:
        """Write `record` and sync it (and the folder's entry for it) to disk."""
        name = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex}"
        final = self.folder / f"{name}{SUFFIX}"
        partial = self.folder / f"{name}.partial"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with partial.open("w", encoding="utf-8") as file:
                json.dump(record, file, ensure_ascii=False)
                file.flush()
                os.fsync(file.fileno())
            partial.rename(final)
            _sync_folder(self.folder)
        except OSError as exc:
            raise SpoolError(f"could not spool to {self.folder}: {exc.strerror}") from exc
        return final

    def pending(self) -> list[Path]:
        """The records waiting, oldest first."""
        try:
            if not self.folder.is_dir():
                return []
            return sorted(self.folder.glob(f"*{SUFFIX}"))
        except OSError as exc:
            raise SpoolError(f"could not list {self.folder}: {exc.strerror}") from exc

    def read(self, path: Path) -> dict[str, str] | None:
        """A record, or None when another process removed it meanwhile."""
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SpoolError(f"unreadable spooled record {path.name}: {exc}") from exc
        if not isinstance(record, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in record.items()
        ):
            raise SpoolError(f"spooled record {path.name} is not an object of strings")
        return record

    def remove(self, path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise SpoolError(f"could not remove {path.name}: {exc.strerror}") from exc

    def set_aside(self, path: Path) -> Path:
        """Rename a record that cannot be read, so it is kept for an operator, not retried."""
        aside = path.with_suffix(".unreadable")
        try:
            path.rename(aside)
        except OSError as exc:
            raise SpoolError(f"could not set {path.name} aside: {exc.strerror}") from exc
        return aside


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
