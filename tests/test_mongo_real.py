"""The Mongo store on a real wire-protocol server, beyond the shared contract: what its
indexes and topology detection leave on the server, and how it treats a second open.

The two differences issue 12 reported against secantusdb were both in the contract
suite's own fixture, not in the server: it dropped each test's database right after
`open()` had created the indexes (so the unique email index was gone and
`DuplicateEmail` never came), and dropped it again after `close()` through the store's
closed client (so `test_close_is_safe_twice` errored at teardown). A real `mongod`
behaves the same way on both counts (dropDatabase removes a database's indexes). The
first test pins what the fixture must hand over.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from engine.errors import DuplicateEmail
from stores.mongo import COLLECTION_NAMES, INDEXES, MongoStore
from stores.records import User
from tests.mongo_server import MongoTarget

pytestmark = pytest.mark.mongo_real
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(params=["mongo", "mongo_standalone"])
def target(request: pytest.FixtureRequest) -> MongoTarget:
    found: MongoTarget = request.getfixturevalue(request.param)
    return found


@pytest.fixture
def store(target: MongoTarget) -> Iterator[MongoStore]:
    with target.database() as name:
        store = MongoStore(target.uri, name)
        store.open()
        try:
            yield store
        finally:
            store.close()


def user(email: str) -> User:
    from engine.ids import new_id

    return User(id=new_id(), name="Ada", email=email, created_at=T0, updated_at=T0)


def test_open_creates_every_index_and_the_email_one_is_unique(
    store: MongoStore, target: MongoTarget
) -> None:
    db = target.client[store.db_name]
    for name, models in INDEXES.items():
        info = db[COLLECTION_NAMES[name]].index_information()
        assert {m.document["name"] for m in models} <= set(info), name
    email = db["users"].index_information()["email_key_unique"]
    assert email["unique"] is True and email["key"] == [("email_key", 1)]


def test_emails_are_unique_ignoring_case_across_two_clients(
    store: MongoStore, target: MongoTarget
) -> None:
    """The server's unique index decides, not the process: a second client on the same
    database is refused the same address in another case."""
    other = MongoStore(target.uri, store.db_name)
    other.open()
    try:
        store.add_user(user("Grace@Example.org"))
        with pytest.raises(DuplicateEmail):
            other.add_user(user("grace@EXAMPLE.org"))
        assert [u.email for u in other.list_users()] == ["Grace@Example.org"]
    finally:
        other.close()


def test_topology_decides_whether_writes_run_in_transactions(
    store: MongoStore, target: MongoTarget
) -> None:
    hello = target.client.admin.command("hello")
    assert store._transactions is bool(hello.get("setName"))
    if target.process is not None:  # ours: the replica set has them, the standalone not
        assert store._transactions is (target.process.replica_set is not None)


def test_close_twice_then_open_again_sees_the_data(store: MongoStore) -> None:
    store.add_user(user("kept@example.com"))
    store.close()
    store.close()
    store.open()
    assert [u.email for u in store.list_users()] == ["kept@example.com"]


def test_client_timeouts_and_journaled_writes_by_default_unless_the_uri_says(
    target: MongoTarget,
) -> None:
    """Bounded waits (no request held for ever by a frozen server) and j: true (a claim is
    on disk before its fire runs) unless the URI chooses its own."""
    with target.database() as name:
        _check_defaults_and_choices(target, name)


def _check_defaults_and_choices(target: MongoTarget, name: str) -> None:
    store = MongoStore(target.uri, name)
    store.open()
    try:
        options = store._client.options
        assert options.server_selection_timeout == 5
        assert options.pool_options.connect_timeout == 5
        assert options.pool_options.socket_timeout == 15
        assert options.write_concern.document == {"j": True}
    finally:
        store.close()
    sep = "&" if "?" in target.uri else "?"
    chosen = MongoStore(target.uri + f"{sep}socketTimeoutMS=60000&w=1", name)
    chosen.open()
    try:
        assert chosen._client.options.pool_options.socket_timeout == 60
        assert chosen._client.options.write_concern.document == {"w": 1}
    finally:
        chosen.close()
