"""Triggers: when a job fires. See base.py for the interface."""

from __future__ import annotations

from engine.triggers.base import Trigger

__all__ = ["Trigger"]
