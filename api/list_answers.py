"""Whole job-list answers remembered by the job table's revision, so a list asked again
while no job changed costs one counter read on the event loop, not a fetch of every
row on the reader thread.

Each answer is kept as its encoded bytes under (list, owner) with the revision its rows
were read at (`Store.revised_render_jobs`: one snapshot). The revision changes with
every write to any job row, whoever makes it (API, engine fires, another node or
program on the store: stores/sqlite_revision.py), and every byte of a list comes from
those rows, so an answer whose revision still reads the same is the answer a fresh
read would give. The revision is read at the request, after every write answered
before it. Stores without a revision (`None`) read the rows every time, as before.
Bounded in bytes (oldest answers go first); a list larger than the bound is not kept.
"""

from __future__ import annotations

import threading

from sanic import Request
from sanic.response import HTTPResponse

from api import context
from api.job_lists import JobList
from stores.base import Store

#: bytes of answers kept at once (an admin's scheduler list of 1,000 jobs is ~1.2 MB)
ANSWER_BYTES = 64 * 1024 * 1024

Key = tuple[str, str | None]


class ListAnswers:
    """The last answer of each (list, owner) with its revision; shared by the event
    loop (reads) and the reader thread (reads and fills)."""

    def __init__(self, limit: int = ANSWER_BYTES) -> None:
        self.limit = limit
        self._answers: dict[Key, tuple[int, bytes]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Key, revision: int) -> bytes | None:
        with self._lock:
            kept = self._answers.get(key)
        return kept[1] if kept is not None and kept[0] == revision else None

    def put(self, key: Key, revision: int, body: bytes) -> None:
        with self._lock:
            old = self._answers.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1])
            if len(body) > self.limit:
                return
            while self._answers and self._bytes + len(body) > self.limit:
                oldest = next(iter(self._answers))
                self._bytes -= len(self._answers.pop(oldest)[1])
            self._answers[key] = (revision, body)
            self._bytes += len(body)

    def read(self, store: Store, job_list: JobList, owner: str | None) -> bytes:
        """The answer, remembered or read (on the reader thread: may wait on the store)."""
        key = (job_list.name, owner)
        current = store.jobs_revision()
        if current is not None:
            kept = self.get(key, current)
            if kept is not None:
                return kept
        revision, texts = store.revised_render_jobs(owner, job_list.render)
        body = job_list.envelope(texts).encode()
        if revision is not None:
            self.put(key, revision, body)
        return body


async def answer(request: Request, job_list: JobList, owner: str | None) -> HTTPResponse:
    """A list answer: straight from the event loop when the remembered one still holds
    (`jobs_revision` never waits), else from the reader thread."""
    store = context.store(request)
    answers: ListAnswers = request.app.ctx.list_answers
    current = store.jobs_revision()
    body = answers.get((job_list.name, owner), current) if current is not None else None
    if body is None:
        body = await context.off_loop(request, lambda: answers.read(store, job_list, owner))
    return context.reply_bytes(body)
