"""`python -m api serve ...`: the same entry point as the `cronwell` console script."""

from __future__ import annotations

from api.cli import main

raise SystemExit(main())
