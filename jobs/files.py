"""Writing the files jobs leave behind (backups, reports): whole or not at all.

A file is written under a temporary name in its folder and only then linked to its
final, timestamped name, so a crash or a cancel never leaves a half file that looks
like a finished backup, and two runs in the same second never overwrite each other.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TextIO


def stamp(when: datetime) -> str:
    """Filename-safe UTC timestamp, sortable: 20260101T093000Z."""
    return when.strftime("%Y%m%dT%H%M%SZ")


def publish(folder: Path, stem: str, suffix: str, write: Callable[[TextIO], None]) -> Path:
    """Create `folder` if needed, let `write` fill a temp file, then give it the first
    free name `stem{suffix}`, `stem-1{suffix}`, ... atomically. Returns the final path.
    If `write` raises, nothing is left behind."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # the file itself is 0600 (mkstemp)
    fd, temp_name = tempfile.mkstemp(prefix=".partial-", suffix=suffix, dir=folder)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        for attempt in range(1000):
            final = folder / f"{stem}{f'-{attempt}' if attempt else ''}{suffix}"
            try:
                os.link(temp, final)  # fails if the name is taken: never overwrites
            except FileExistsError:
                continue
            return final
        raise FileExistsError(f"no free name for {stem}{suffix} in {folder}")
    finally:
        temp.unlink(missing_ok=True)
