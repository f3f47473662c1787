"""The MongoDB store (pymongo), in the collections the scheduler seed documents.

`users`, `servers`, `scheduler_jobs`, `scheduler_executions`; each document is the
record with `_id` = the id string. Datetimes are `stores.codec` text (BSON dates keep
only milliseconds, and the contract wants microseconds back); a time field that is None
is left out, so `{"next_run_time": None}` matches it and `$max` can raise it.

Claims are one `update_one` filtered on `next_run_time`. Writes that belong together
(a claim and its executions, a finish and the job's counter) run in a transaction when
the server is a replica set or mongos; on a standalone server they run in order, claim
first, so a fire is never run twice. The client factory is injectable; the tests run
this code on real servers (tests/mongo_server.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any, TypeVar

import bson
import pymongo
from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING, DESCENDING, IndexModel, ReplaceOne, UpdateOne
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from engine.errors import (
    ApiKeyNotFound,
    DuplicateEmail,
    ExecutionNotFound,
    JobExists,
    JobNotFound,
    NotFound,
    ServerNotFound,
    StoreError,
    StoreUnavailable,
    UserNotFound,
)
from engine.gcpause import paused_gc
from engine.ids import new_id
from engine.interfaces import JOB_ROW_FIELDS, record_row
from engine.model import TERMINAL_STATUSES, Execution, Job, Status
from stores.base import (
    RUN_COUNTERS,
    FireClaim,
    JobCounts,
    Store,
    check_collection,
    check_maintenance_task,
)
from stores.codec import plain, revive, revive_times, time_fields, time_text
from stores.mongo_cluster import PENDING, MongoCluster
from stores.records import ApiKey, AuditEntry, Server, User
from stores.rendered import RenderMemo

T = TypeVar("T")

#: Store collection name -> MongoDB collection (the scheduler seed's names)
COLLECTION_NAMES = {
    "users": "users",
    "servers": "servers",
    "jobs": "scheduler_jobs",
    "executions": "scheduler_executions",
    "api_keys": "api_keys",
    "audit": "audit_log",
}
MODELS: dict[str, type] = {
    "users": User,
    "servers": Server,
    "jobs": Job,
    "executions": Execution,
    "api_keys": ApiKey,
    "audit": AuditEntry,
}
OLDEST_FIRST = [("created_at", ASCENDING), ("_id", ASCENDING)]
NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]
INDEXES: dict[str, list[IndexModel]] = {
    "users": [
        IndexModel([("email_key", ASCENDING)], name="email_key_unique", unique=True),
        IndexModel(OLDEST_FIRST, name="created"),
    ],
    "servers": [
        IndexModel([("user_id", ASCENDING), ("created_at", ASCENDING)], name="user_created"),
        IndexModel(OLDEST_FIRST, name="created"),
    ],
    "jobs": [
        IndexModel(OLDEST_FIRST, name="created"),
        IndexModel([("owner", ASCENDING), ("created_at", ASCENDING)], name="owner_created"),
        # the load window's reads (engine/scheduling/window.py); a compound index with
        # _id would spare them sorting a crowd of jobs due at one instant, but on
        # secantusdb it slowed the claims enough to fail the several-nodes kill test
        # (README, "Load window")
        IndexModel([("next_run_time", ASCENDING)], name="next_run_time"),
    ],
    "executions": [
        IndexModel(NEWEST_FIRST, name="created"),
        IndexModel([("job_id", ASCENDING), ("created_at", DESCENDING)], name="job_created"),
        IndexModel([("owner", ASCENDING), ("created_at", DESCENDING)], name="owner_created"),
        IndexModel([("status", ASCENDING), ("created_at", DESCENDING)], name="status_created"),
        # a job's or a user's executions of one status, newest first (the executions
        # page's filters, as on SQL), and their counts from the index alone
        IndexModel(
            [("job_id", ASCENDING), ("status", ASCENDING), *NEWEST_FIRST], name="job_status"
        ),
        IndexModel(
            [("owner", ASCENDING), ("status", ASCENDING), *NEWEST_FIRST], name="owner_status"
        ),
    ],
    "api_keys": [
        IndexModel([("key_hash", ASCENDING)], name="key_hash_unique", unique=True),
        IndexModel([("user_id", ASCENDING), ("created_at", ASCENDING)], name="user_created"),
    ],
    "audit": [
        IndexModel(NEWEST_FIRST, name="created"),
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created"),
    ],
}
TERMINAL = sorted(str(s) for s in TERMINAL_STATUSES)
#: claim tokens kept per job: enough to tell which claims of one bulk write won
RECENT_CLAIMS = 8
#: seconds closing the client may take (ending its sessions; milliseconds when the
#: server answers)
CLOSE_TIMEOUT_S = 1.0
#: the server command behind each maintenance task that is one command per collection
MAINTENANCE_COMMANDS = {"clear_cache": "planCacheClear", "vacuum": "compact"}


def to_document(obj: Any) -> dict[str, Any]:
    """A model object as the document stored for it."""
    document = plain(obj.to_record())
    document["_id"] = document.pop("id")
    for name in time_fields(type(obj)):
        if document.get(name) is None:
            document.pop(name, None)
    if isinstance(obj, User):
        document["email_key"] = obj.email.casefold()
    return document


def from_document(model: type[T], document: Mapping[str, Any]) -> T:
    record = dict(document)
    record["id"] = record.pop("_id")
    return revive(model, record)


def job_record(document: Mapping[str, Any]) -> dict[str, Any]:
    """A job document as the record `Job.from_record` takes."""
    record = dict(document)
    record["id"] = record.pop("_id")
    return revive_times(Job, record)


def _set_or_unset(values: Mapping[str, Any]) -> dict[str, Any]:
    """An update document setting the given fields, removing those that are None."""
    update: dict[str, Any] = {}
    sets = {k: v for k, v in values.items() if v is not None}
    unsets = {k: "" for k, v in values.items() if v is None}
    if sets:
        update["$set"] = sets
    if unsets:
        update["$unset"] = unsets
    return update


def _job_write(job: Job) -> dict[str, Any]:
    """An update document writing `job` over its stored document, except the
    RUN_COUNTERS: those are set only when the write inserts the job ($setOnInsert),
    so an update or a replace keeps the counts claims and finishes made."""
    document = to_document(job)
    del document["_id"]
    counters = {name: document.pop(name) for name in RUN_COUNTERS if name in document}
    update: dict[str, Any] = {"$set": document}
    unset = {n: "" for n in time_fields(Job) if n not in document and n not in RUN_COUNTERS}
    if unset:
        update["$unset"] = unset
    if counters:
        update["$setOnInsert"] = counters
    return update


def _counter_bump(execution: Execution) -> tuple[dict[str, Any], dict[str, Any]]:
    """(filter, update) counting one finished execution on its job's run counters."""
    bump: dict[str, Any] = {"$inc": {"total_executions": 1}}
    if execution.started_at is not None:
        bump["$max"] = {"last_run_time": time_text(execution.started_at)}
    return {"_id": execution.job_id}, bump


def _claim_update(
    claim: FireClaim, token: str, pending: list[dict[str, Any]] | None = None
) -> UpdateOne:
    """The conditional update for one claim (see `MongoStore.claim_fires`); `pending`,
    the claim's execution documents, rides along in the job's document (on a server
    without transactions: stores/mongo_cluster.py, PENDING)."""
    expected = time_text(claim.expected_next_run_time)
    values: dict[str, Any] = {"next_run_time": time_text(claim.next_run_time)}
    if claim.executions:
        values["last_run_time"] = expected
    update = _set_or_unset(values)
    update["$push"] = {"recent_claims": {"$each": [token], "$slice": -RECENT_CLAIMS}}
    if pending:
        update["$push"][PENDING] = {"$each": pending}
    return UpdateOne({"_id": claim.job_id, "next_run_time": expected}, update)


class MongoStore(MongoCluster, Store):
    backend = "mongo"

    def __init__(
        self,
        uri: str,
        db_name: str,
        *,
        client_factory: Callable[..., Any] = pymongo.MongoClient,
        timeout_ms: int = 5000,
    ) -> None:
        self.uri = uri
        self.db_name = db_name
        self._factory = client_factory
        self._timeout_ms = timeout_ms
        #: job documents already rendered, by their BSON bytes (`render_jobs`)
        self._rendered = RenderMemo()
        self._client: Any = None
        self._db: Any = None
        self._transactions = False

    # -- lifecycle -------------------------------------------------------------------
    def open(self) -> None:
        if self._client is not None:
            return
        options: dict[str, Any] = {"tz_aware": True}
        given = self.uri.lower()
        # Bounded waits unless the URI sets its own: pymongo's defaults are 30 s to find
        # a server, 20 s to connect and no limit on an answer, so a request on a frozen
        # or unreachable server held its thread for half a minute or more.
        defaults = {
            "serverSelectionTimeoutMS": self._timeout_ms,
            "connectTimeoutMS": self._timeout_ms,
            "socketTimeoutMS": 3 * self._timeout_ms,
        }
        options.update({k: v for k, v in defaults.items() if k.lower() not in given})
        # A claim must be on disk before its fire runs, or a server crash that loses it
        # runs the fire again: ask for journaled writes (j: true) unless the URI chose.
        if "journal=" not in given and "w=" not in given:
            options["journal"] = True
        try:
            client = self._factory(self.uri, **options)
        except (PyMongoError, ValueError) as exc:
            raise StoreUnavailable(f"invalid MongoDB URI: {exc}") from exc
        try:
            client.admin.command("ping")
            self._db = client[self.db_name]
            self._ensure_indexes()
            self._ensure_cluster_indexes()
        except PyMongoError as exc:
            client.close()
            # a selection timeout appends the whole topology; the reason comes before it
            reason = str(exc).split(", Topology Description:")[0]
            raise StoreUnavailable(" ".join(reason.split())) from exc
        self._client = client
        self._transactions = self._supports_transactions()

    def close(self) -> None:
        """Close the client within CLOSE_TIMEOUT_S: pymongo's close ends the server
        sessions first, which with the server gone waited out the whole server
        selection timeout and held every shutdown for it."""
        if self._client is not None:
            with pymongo.timeout(CLOSE_TIMEOUT_S), suppress(PyMongoError):
                self._client.close()
            self._client = None
            self._db = None

    def _supports_transactions(self) -> bool:
        """True on a replica set or mongos, where multi-document transactions exist."""
        try:
            hello = self._client.admin.command("hello")
        except (PyMongoError, NotImplementedError):  # old server, or a stand-in client
            return False
        return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"

    def _ensure_indexes(self) -> dict[str, list[str]]:
        """Create every index (a no-op for those that exist); return their names."""
        return {
            name: list(self._collection(name).create_indexes(models))
            for name, models in INDEXES.items()
        }

    def _collection(self, name: str) -> Any:
        if self._db is None:
            raise StoreError("mongo store is not open")
        return self._db[COLLECTION_NAMES[name]]

    @contextmanager
    def _driver(self, duplicate: Exception | None = None) -> Iterator[None]:
        """Driver failures become StoreError with the driver's message; a unique-index
        refusal becomes `duplicate` when the caller knows what it means."""
        try:
            yield
        except DuplicateKeyError as exc:
            if duplicate is None:
                raise StoreError("mongo store failed: " + " ".join(str(exc).split())) from exc
            raise duplicate from None
        except PyMongoError as exc:
            raise StoreError("mongo store failed: " + " ".join(str(exc).split())) from exc

    def _atomically(self, work: Callable[[Any], T]) -> T:
        """Run work(session) in a transaction where the server has them, else in order."""
        if not self._transactions:
            return work(None)
        # with_transaction retries a transaction that failed transiently (a network
        # error is one) for up to 120 s: with the server gone, the engine's loop sat in
        # one claim that long and every API write queued behind it. One timeout's worth
        # of retrying, then the error reaches the caller, whose backoff takes over.
        with self._client.start_session() as session, pymongo.timeout(self._timeout_ms / 1000):
            result: T = session.with_transaction(work)
            return result

    # -- shared shapes ---------------------------------------------------------------
    def _get(self, name: str, record_id: str, missing: type[NotFound]) -> Any:
        with self._driver():
            document = self._collection(name).find_one({"_id": record_id})
        if document is None:
            raise missing(record_id)
        return from_document(MODELS[name], document)

    def _find(
        self,
        name: str,
        query: Mapping[str, Any],
        sort: list[tuple[str, int]],
        skip: int = 0,
        limit: int = 0,
    ) -> list[Any]:
        with self._driver():
            cursor = self._collection(name).find(query).sort(sort).skip(skip).limit(limit)
            documents = list(cursor)
        with paused_gc(len(documents)):
            return [from_document(MODELS[name], d) for d in documents]

    def _replace(
        self, name: str, obj: Any, missing: type[NotFound], duplicate: Exception | None = None
    ) -> None:
        with self._driver(duplicate):
            result = self._collection(name).replace_one({"_id": obj.id}, to_document(obj))
        if result.matched_count == 0:
            raise missing(obj.id)

    def _upsert(self, name: str, obj: Any, duplicate: Exception | None = None) -> None:
        with self._driver(duplicate):
            self._collection(name).replace_one({"_id": obj.id}, to_document(obj), upsert=True)

    def _delete(self, name: str, record_id: str, missing: type[NotFound]) -> None:
        with self._driver():
            result = self._collection(name).delete_one({"_id": record_id})
        if result.deleted_count == 0:
            raise missing(record_id)

    # -- jobs ------------------------------------------------------------------------
    def add_job(self, job: Job, *, replace: bool = False) -> None:
        if replace:
            with self._driver():
                self._collection("jobs").update_one({"_id": job.id}, _job_write(job), upsert=True)
        else:
            with self._driver(duplicate=JobExists(job.id)):
                self._collection("jobs").insert_one(to_document(job))
        self._changed(job.id)

    def update_job(self, job: Job) -> None:
        with self._driver():
            result = self._collection("jobs").update_one({"_id": job.id}, _job_write(job))
        if result.matched_count == 0:
            raise JobNotFound(job.id)
        self._changed(job.id)

    def remove_job(self, job_id: str) -> None:
        self._delete("jobs", job_id, JobNotFound)
        self._changed(job_id)

    def get_job(self, job_id: str) -> Job:
        job: Job = self._get("jobs", job_id, JobNotFound)
        return job

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, Job]:
        with self._driver():
            documents = list(self._collection("jobs").find({"_id": {"$in": list(job_ids)}}))
        return {d["_id"]: from_document(Job, d) for d in documents}

    def list_jobs(self, owner: str | None = None) -> list[Job]:
        return self._find("jobs", {} if owner is None else {"owner": owner}, OLDEST_FIRST)

    def job_records(
        self, page: int = 1000, fields: Sequence[str] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Keyset pages by _id: each page is one short query, no cursor held open;
        with `fields`, the server sends only those."""
        yield from self._job_pages({}, page, fields)

    def job_rows(
        self, page: int = 1000, due_by: datetime | None = None
    ) -> Iterator[list[Sequence[Any]]]:
        """With `due_by`, the server picks the rows (on the next_run_time index for
        what is due; the observers' fields have none)."""
        query: dict[str, Any] = {}
        if due_by is not None:
            query = {
                "$or": [
                    {"next_run_time": {"$lte": time_text(due_by)}},
                    {"history_limit": {"$ne": None}},
                    {"notify": {"$ne": None}},
                ]
            }
        for records in self._job_pages(query, page, JOB_ROW_FIELDS):
            yield [record_row(record) for record in records]

    def due_job_rows(
        self, after: tuple[datetime, str | None], until: datetime, limit: int = 1000
    ) -> list[Sequence[Any]]:
        """Two reads, as the SQL stores make: the rest of the cursor's own time, then
        the times after it, each on the next_run_time index (its jobs sorted by _id
        by the server, a page's worth at a time)."""
        since, after_id = time_text(after[0]), after[1]
        wanted = max(limit, 1)
        fields = {f: 1 for f in JOB_ROW_FIELDS if f != "id"}
        order = [("next_run_time", ASCENDING), ("_id", ASCENDING)]
        documents: list[Any] = []
        with self._driver():
            jobs = self._collection("jobs")
            if after_id is not None:
                tied = {"next_run_time": since, "_id": {"$gt": after_id}}
                documents = list(jobs.find(tied, fields).sort(order).limit(wanted))
            if len(documents) < wanted:
                later = {"next_run_time": {"$gt": since, "$lte": time_text(until)}}
                found = jobs.find(later, fields).sort(order).limit(wanted - len(documents))
                documents += list(found)
        return [record_row(job_record(d)) for d in documents]

    def _job_pages(
        self, query: Mapping[str, Any], page: int, fields: Sequence[str] | None
    ) -> Iterator[list[dict[str, Any]]]:
        """Keyset pages by _id of the jobs `query` matches."""
        limit = max(page, 1)
        wanted = None if fields is None else {f: 1 for f in fields if f != "id"}
        paged: Mapping[str, Any] = query
        while True:
            with self._driver():
                found = self._collection("jobs").find(paged, wanted)
                found = found.sort("_id", ASCENDING).limit(limit)
                documents = list(found)
            if documents:
                yield [job_record(d) for d in documents]
            if len(documents) < limit:
                return
            after = {"_id": {"$gt": documents[-1]["_id"]}}
            paged = {"$and": [query, after]} if query else after

    def render_jobs(self, owner: str | None, render: Callable[[Job], str]) -> list[str]:
        """`list_jobs`' one query read as raw BSON, each document's text remembered by
        its exact bytes (stores/rendered.py); a new or changed one is decoded with the
        collection's own options, as `list_jobs` decodes it."""
        collection = self._collection("jobs")
        options = collection.codec_options
        raw = collection.with_options(
            codec_options=options.with_options(document_class=RawBSONDocument)
        )
        query = {} if owner is None else {"owner": owner}
        with self._driver():
            stored = [d.raw for d in raw.find(query).sort(OLDEST_FIRST)]

        def decode(data: bytes) -> Job:
            return from_document(Job, bson.decode(data, codec_options=options))

        return self._rendered.render(stored, decode, render)

    def count_jobs(self, owner: str | None = None) -> JobCounts:
        pipeline: list[dict[str, Any]] = [
            {"$match": {} if owner is None else {"owner": owner}},
            {
                "$group": {
                    "_id": None,
                    "total": {"$sum": 1},
                    "enabled": {"$sum": {"$cond": ["$enabled", 1, 0]}},
                    "paused": {"$sum": {"$cond": ["$paused", 1, 0]}},
                }
            },
        ]
        with self._driver():
            groups = list(self._collection("jobs").aggregate(pipeline))
        if not groups:
            return JobCounts(total=0, enabled=0, paused=0)
        g = groups[0]
        return JobCounts(total=int(g["total"]), enabled=int(g["enabled"]), paused=int(g["paused"]))

    def claim_fire(
        self,
        job_id: str,
        expected_next_run_time: datetime | None,
        next_run_time: datetime | None,
        executions: Sequence[Execution],
    ) -> bool:
        claim = FireClaim(job_id, expected_next_run_time, next_run_time, executions)
        return self.claim_fires([claim])[0]

    def claim_fires(self, claims: Sequence[FireClaim]) -> list[bool]:
        """All claims in one bulk write, then all their executions in another.

        A bulk result only gives a total, so each claim also pushes a fresh token onto
        the job's short `recent_claims` list: when the total says some claim lost, one
        read of those lists tells exactly which ones won. In a transaction where the
        server has them; otherwise claims land first, each carrying its executions in
        the job's document until they are written (`_record_claimed`), so a fire is
        never run twice and its record survives a crash between the two writes.
        """
        if not claims:
            return []
        tokens = [new_id() for _ in claims]
        # no transactions: each claim's execution documents ride in its job's document
        pending = (
            None if self._transactions else [[to_document(e) for e in c.executions] for c in claims]
        )

        def work(session: Any) -> list[bool]:
            jobs = self._collection("jobs")
            updates = [
                _claim_update(c, t, pending[i] if pending else None)
                for i, (c, t) in enumerate(zip(claims, tokens, strict=True))
            ]
            result = jobs.bulk_write(updates, ordered=True, session=session)
            if result.matched_count == len(claims):
                won = [True] * len(claims)
            else:
                query = {"_id": {"$in": [c.job_id for c in claims]}}
                found = jobs.find(query, {"recent_claims": 1}, session=session)
                recent = {d["_id"]: d.get("recent_claims", []) for d in found}
                won = [t in recent.get(c.job_id, ()) for c, t in zip(claims, tokens, strict=True)]
            if pending is not None:
                return self._record_claimed(claims, won, pending)
            writes = [
                ReplaceOne({"_id": e.id}, to_document(e), upsert=True)
                for claim, ok in zip(claims, won, strict=True)
                if ok
                for e in claim.executions
            ]
            if writes:
                self._collection("executions").bulk_write(writes, ordered=True, session=session)
            return won

        with self._driver():
            return self._atomically(work)

    # -- executions ------------------------------------------------------------------
    def add_execution(self, execution: Execution) -> None:
        self._upsert("executions", execution)

    def update_execution(self, execution: Execution) -> None:
        self._replace("executions", execution, ExecutionNotFound)

    def start_claimed(self, execution: Execution) -> bool:
        # one conditional single-document write: atomic against take_over's, which is
        # conditional on the same two fields
        condition = {"_id": execution.id, "status": str(Status.QUEUED), "node": execution.node}
        with self._driver():
            written = self._collection("executions").replace_one(condition, to_document(execution))
        return bool(written.matched_count)

    def finish_execution(self, execution: Execution) -> None:
        def work(session: Any) -> None:
            written = self._collection("executions").replace_one(
                {"_id": execution.id}, to_document(execution), session=session
            )
            if written.matched_count == 0:
                raise ExecutionNotFound(execution.id)
            self._collection("jobs").update_one(*_counter_bump(execution), session=session)

        with self._driver():
            self._atomically(work)

    def record_progress(self, started: Sequence[Execution], finished: Sequence[Execution]) -> None:
        """One bulk write for every execution, one for the counter bumps of those that
        were still there (a bulk result only gives totals: when some were missing, one
        read of the ids tells which)."""
        everything = [*started, *finished]
        if not everything:
            return
        writes = [ReplaceOne({"_id": e.id}, to_document(e)) for e in everything]

        def work(session: Any) -> None:
            executions = self._collection("executions")
            result = executions.bulk_write(writes, ordered=True, session=session)
            done = list(finished)
            if result.matched_count < len(writes):
                query = {"_id": {"$in": [e.id for e in done]}}
                present = {d["_id"] for d in executions.find(query, {"_id": 1}, session=session)}
                done = [e for e in done if e.id in present]
            if done:
                bumps = [UpdateOne(*_counter_bump(e)) for e in done]
                self._collection("jobs").bulk_write(bumps, ordered=True, session=session)

        with self._driver():
            self._atomically(work)

    def get_execution(self, execution_id: str) -> Execution:
        execution: Execution = self._get("executions", execution_id, ExecutionNotFound)
        return execution

    @staticmethod
    def _execution_query(
        job_id: str | None, owner: str | None, status: Status | None
    ) -> dict[str, Any]:
        values = {
            "job_id": job_id,
            "owner": owner,
            "status": None if status is None else str(status),
        }
        return {k: v for k, v in values.items() if v is not None}

    def list_executions(
        self,
        *,
        job_id: str | None = None,
        owner: str | None = None,
        status: Status | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Execution]:
        if limit <= 0:  # MongoDB reads limit(0) as "no limit"
            return []
        query = self._execution_query(job_id, owner, status)
        return self._find("executions", query, NEWEST_FIRST, max(offset, 0), limit)

    def count_executions(
        self, *, job_id: str | None = None, owner: str | None = None, status: Status | None = None
    ) -> int:
        with self._driver():
            query = self._execution_query(job_id, owner, status)
            return int(self._collection("executions").count_documents(query))

    def execution_stats(self, owner: str | None = None) -> dict[str, int]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {} if owner is None else {"owner": owner}},
            {"$group": {"_id": "$status", "count": {"$sum": 1}}},
        ]
        with self._driver():
            groups = list(self._collection("executions").aggregate(pipeline))
        return {str(g["_id"]): int(g["count"]) for g in groups}

    def abandon_running(
        self,
        now: datetime,
        message: str,
        *,
        keep_nodes: Collection[str] = (),
        only_nodes: Collection[str] | None = None,
    ) -> list[Execution]:
        # One update_many marks them all at once; the ids read first, and the update
        # limited to them and to `running`, tell which this call marked (one that ended
        # between the two reads is left as it ended).
        update = {
            "$set": {
                "status": str(Status.ABANDONED),
                "completed_at": time_text(now),
                "error": message,
            }
        }
        with self._driver():
            query: dict[str, Any] = {"status": str(Status.RUNNING)}
            if only_nodes is not None:
                query["node"] = {"$in": list(only_nodes)}
            elif keep_nodes:
                query["node"] = {"$nin": list(keep_nodes)}  # a missing node matches too
            executions = self._collection("executions")
            ids = [d["_id"] for d in executions.find(query, {"_id": 1})]
            if not ids:
                return []
            executions.update_many({**query, "_id": {"$in": ids}}, update)
            marked = executions.find({"_id": {"$in": ids}, **update["$set"]})
            found = [from_document(Execution, d) for d in marked]
        return sorted(found, key=lambda e: (e.created_at, e.id))

    def delete_executions_before(
        self, cutoff: datetime, *, job_id: str | None = None, limit: int | None = None
    ) -> int:
        query: dict[str, Any] = {"created_at": {"$lt": time_text(cutoff)}}
        if job_id is not None:
            query["job_id"] = job_id
        terminal = {"status": {"$in": TERMINAL}}
        with self._driver():
            executions = self._collection("executions")
            if limit is None:
                return int(executions.delete_many({**query, **terminal}).deleted_count)
            if limit <= 0:  # MongoDB reads limit(0) as "no limit"
                return 0
            oldest = executions.find({**query, **terminal}, {"_id": 1})
            ids = [d["_id"] for d in oldest.sort(OLDEST_FIRST).limit(limit)]
            if not ids:
                return 0
            # the status again: one that is no longer terminal is never deleted
            return int(executions.delete_many({"_id": {"$in": ids}, **terminal}).deleted_count)

    # -- users -----------------------------------------------------------------------
    def add_user(self, user: User) -> None:
        self._upsert("users", user, DuplicateEmail(user.email))

    def get_user(self, user_id: str) -> User:
        user: User = self._get("users", user_id, UserNotFound)
        return user

    def list_users(self) -> list[User]:
        return self._find("users", {}, OLDEST_FIRST)

    def update_user(self, user: User) -> None:
        self._replace("users", user, UserNotFound, DuplicateEmail(user.email))

    def delete_user(self, user_id: str) -> None:
        self._delete("users", user_id, UserNotFound)

    # -- servers ---------------------------------------------------------------------
    def add_server(self, server: Server) -> None:
        self._upsert("servers", server)

    def get_server(self, server_id: str) -> Server:
        server: Server = self._get("servers", server_id, ServerNotFound)
        return server

    def list_servers(self, user_id: str | None = None) -> list[Server]:
        return self._find("servers", {} if user_id is None else {"user_id": user_id}, OLDEST_FIRST)

    def update_server(self, server: Server) -> None:
        self._replace("servers", server, ServerNotFound)

    def delete_server(self, server_id: str) -> None:
        self._delete("servers", server_id, ServerNotFound)

    # -- API keys --------------------------------------------------------------------
    def add_api_key(self, key: ApiKey) -> None:
        with self._driver():
            self._collection("api_keys").insert_one(to_document(key))

    def get_api_key(self, key_id: str) -> ApiKey:
        key: ApiKey = self._get("api_keys", key_id, ApiKeyNotFound)
        return key

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        with self._driver():
            document = self._collection("api_keys").find_one({"key_hash": key_hash})
        return None if document is None else from_document(ApiKey, document)

    def list_api_keys(self, user_id: str | None = None) -> list[ApiKey]:
        query: dict[str, Any] = {"revoked_at": {"$exists": False}}
        if user_id is not None:
            query["user_id"] = user_id
        return self._find("api_keys", query, OLDEST_FIRST)

    def revoke_api_key(self, key_id: str, when: datetime) -> None:
        with self._driver():
            keys = self._collection("api_keys")
            result = keys.update_one(
                {"_id": key_id, "revoked_at": {"$exists": False}},
                {"$set": {"revoked_at": time_text(when)}},
            )
            if result.matched_count == 0 and keys.find_one({"_id": key_id}, {"_id": 1}) is None:
                raise ApiKeyNotFound(key_id)

    def touch_api_key(self, key_id: str, when: datetime) -> None:
        with self._driver():
            self._collection("api_keys").update_one(
                {"_id": key_id}, {"$set": {"last_used_at": time_text(when)}}
            )

    def has_api_keys(self) -> bool:
        with self._driver():
            return self._collection("api_keys").find_one({}, {"_id": 1}) is not None

    # -- audit trail -----------------------------------------------------------------
    def add_audit_entries(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        with self._driver():
            self._collection("audit").insert_many([to_document(e) for e in entries])

    @staticmethod
    def _audit_query(user_id: str | None, since: datetime | None) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if user_id is not None:
            query["user_id"] = user_id
        if since is not None:
            query["created_at"] = {"$gte": time_text(since)}
        return query

    def list_audit_entries(
        self,
        *,
        user_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        if limit <= 0:  # MongoDB reads limit(0) as "no limit"
            return []
        query = self._audit_query(user_id, since)
        return self._find("audit", query, NEWEST_FIRST, max(offset, 0), limit)

    def count_audit_entries(
        self, *, user_id: str | None = None, since: datetime | None = None
    ) -> int:
        with self._driver():
            query = self._audit_query(user_id, since)
            return int(self._collection("audit").count_documents(query))

    def delete_audit_before(self, cutoff: datetime) -> int:
        with self._driver():
            query = {"created_at": {"$lt": time_text(cutoff)}}
            return int(self._collection("audit").delete_many(query).deleted_count)

    # -- whole collections -----------------------------------------------------------
    def export(self, collection: str) -> Iterator[dict[str, Any]]:
        check_collection(collection)
        return self._export(collection)

    def _export(self, collection: str) -> Iterator[dict[str, Any]]:
        """A server-side cursor in _id order, read in batches as the caller consumes it."""
        model = MODELS[collection]
        with self._driver():
            for document in self._collection(collection).find({}).sort("_id", ASCENDING):
                record: dict[str, Any] = from_document(model, document).to_record()
                record.pop("password_encrypted", None)
                yield record

    def maintenance(self, task: str) -> dict[str, Any]:
        check_maintenance_task(task)
        with self._driver():
            if task == "rebuild_indexes":
                done: Any = self._ensure_indexes()
            elif task == "optimize_queries":
                done = self._index_usage()
            else:
                done = self._per_collection(MAINTENANCE_COMMANDS[task])
        return {"task": task, "backend": self.backend, "done": done}

    def _per_collection(self, command: str) -> dict[str, str]:
        """Run one server command on each collection. A server that refuses it (no
        privilege, or a stand-in that lacks it) is reported per collection, not raised."""
        results: dict[str, str] = {}
        for name in COLLECTION_NAMES:
            try:
                self._db.command({command: COLLECTION_NAMES[name]})
                results[name] = "ok"
            except (OperationFailure, NotImplementedError) as exc:
                results[name] = f"skipped: {' '.join(str(exc).split())}"
        return results

    def _index_usage(self) -> dict[str, Any]:
        """Per-index use counts since server start: what shows an index is dead weight
        or a query is missing one (MongoDB has no ANALYZE to run)."""
        usage: dict[str, Any] = {}
        for name in COLLECTION_NAMES:
            try:
                stats = self._collection(name).aggregate([{"$indexStats": {}}])
                usage[name] = {s["name"]: int(s["accesses"]["ops"]) for s in stats}
            except (OperationFailure, NotImplementedError) as exc:
                usage[name] = f"skipped: {' '.join(str(exc).split())}"
        return usage
