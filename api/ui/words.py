"""Durations in words for the pages (`5 minutes`, `1 day 2 hours`). A trigger in words
is the API's own (api/schedule_words.py, every job's `schedule.description`)."""

from __future__ import annotations

from datetime import timedelta


def duration_in_words(span: timedelta) -> str:
    """`5 minutes`, `1 day 2 hours`, `90.5 seconds` for sub-minute remainders."""
    seconds = span.total_seconds()
    units = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60))
    words = []
    for name, size in units:
        count = int(seconds // size)
        if count:
            words.append(f"{count} {name}{'s' if count != 1 else ''}")
            seconds -= count * size
    if seconds or not words:
        shown = f"{seconds:g}"
        words.append(f"{shown} second{'s' if shown != '1' else ''}")
    return " ".join(words)
