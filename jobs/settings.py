"""What the job classes read of the service's configuration, and nothing more.

The service's `api.config.Settings` has these attributes (it is read from the
environment there); job classes see it only through this Protocol, so `jobs/` never
imports `api/`, and a test may hand in any object with these fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class JobSettings(Protocol):
    @property
    def data_dir(self) -> Path: ...
    @property
    def script_roots(self) -> tuple[Path, ...]: ...
    @property
    def output_cap(self) -> int: ...
    @property
    def smtp_host(self) -> str: ...
    @property
    def smtp_port(self) -> int: ...
    @property
    def smtp_from(self) -> str: ...
    @property
    def smtp_user(self) -> str: ...
    @property
    def smtp_password(self) -> str: ...
    @property
    def smtp_starttls(self) -> bool: ...
    @property
    def backups(self) -> Path:
        """Where DataBackupJob writes (CRONWELL_BACKUP_DIR, else data_dir/backups)."""

    @property
    def reports(self) -> Path:
        """Where ReportGenerationJob writes (CRONWELL_REPORT_DIR, else data_dir/reports)."""

    @property
    def extra(self) -> dict[str, Any]:
        """Knobs of single job classes (timeouts, the SMTP CA file), by name."""
