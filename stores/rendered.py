"""What `Store.render_jobs` remembers: each job's rendered text by the job's exact
stored form (a SQL row's values, a MongoDB document's BSON bytes).

A render function is a pure function of the job, and the stored form decides the job,
so a stored form seen before gives the text it gave then: an unchanged job costs a
dictionary lookup, not a decode and a render. A changed job has another stored form,
so nothing stale is ever given. Bounded per render function (it starts afresh when
full) and in the number of functions; a list longer than the table is rendered
without it, since it would only churn it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from engine.gcpause import paused_gc
from engine.model import Job

S = TypeVar("S", bound=Hashable)

#: stored forms remembered per render function (a row and its text, about 2.5 KB each)
RENDERED_JOBS_LIMIT = 10_000
#: render functions remembered at once (the API has two: one per surface)
RENDER_FUNCTIONS = 8


class RenderMemo:
    def __init__(self, limit: int = RENDERED_JOBS_LIMIT) -> None:
        self.limit = limit
        self._tables: dict[Callable[[Job], str], dict[Hashable, str]] = {}

    def render(
        self, stored: Sequence[S], decode: Callable[[S], Job], render: Callable[[Job], str]
    ) -> list[str]:
        """`render(decode(s))` for each stored form, in order, remembered."""
        if len(stored) > self.limit:
            with paused_gc(len(stored)):
                return [render(decode(s)) for s in stored]
        table = self._tables.get(render)
        if table is None:
            if len(self._tables) >= RENDER_FUNCTIONS:
                self._tables.clear()
            table = self._tables[render] = {}
        texts = []
        for form in stored:
            try:
                text = table.get(form)
            except TypeError:  # a driver value that cannot be a key: just render
                texts.append(render(decode(form)))
                continue
            if text is None:
                text = render(decode(form))  # a fresh Job only `render` sees: no copy
                if len(table) >= self.limit:
                    table.clear()
                table[form] = text
            texts.append(text)
        return texts
