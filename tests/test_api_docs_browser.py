"""/docs in a real browser: headless Chromium renders Swagger UI from the service's own
files (no network beyond loopback) with one block per operation of /openapi.json."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.api_support import make_settings, running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs a Chromium (apt-get install chromium)")
def test_swagger_ui_renders_every_operation_offline(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    with running_server(make_settings(tmp_path)) as live:
        spec = requests.get(f"{live.url}/openapi.json", timeout=5).json()
        dom = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                f"{live.url}/docs",
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        ).stdout
    rendered = re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom)
    expected = [path for path, ops in spec["paths"].items() for _ in ops]
    assert sorted(rendered) == sorted(expected), dom[:2000]
    assert "Authorize" in dom  # the ApiKey scheme, for services started with keys
