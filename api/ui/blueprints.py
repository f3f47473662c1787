"""The dashboard's blueprints, in the order the app registers them."""

from __future__ import annotations

from api.ui import people, routes, sign_in, system

BLUEPRINTS = (routes.bp, people.bp, system.bp, sign_in.bp)
