"""Session-wide fixtures: the real MongoDB servers the Mongo cases run on.

Without MONGO_URI, `mongo` is a secantusdb one-node replica set (transactions, as a
replica set or Atlas has them) and `mongo_standalone` a standalone secantusdb (no
transactions, as a plain `mongod` and compose's `mongo:7`), each in its own child
process, started the first time a test asks for it and stopped by its pid at the end
of the session. With MONGO_URI, `mongo` is that server and `mongo_standalone` is not
run (that server's own topology decides which path the store takes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.mongo_server import (
    SECANTUS_PLATFORM,
    MongoTarget,
    secantus_target,
    uri_target,
)

MONGO_URI = os.environ.get("MONGO_URI", "")


def _secantus(
    factory: pytest.TempPathFactory, name: str, replica_set: str | None
) -> Iterator[MongoTarget]:
    if not SECANTUS_PLATFORM:
        pytest.skip("secantusdb has wheels for CPython 3.11 on x86-64 Linux only: set MONGO_URI")
    target = secantus_target(factory.mktemp(name), replica_set=replica_set)
    try:
        yield target
    finally:
        target.close()
        assert target.process is not None
        target.process.stop()


@pytest.fixture(scope="session")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoTarget]:
    if MONGO_URI:
        target = uri_target(MONGO_URI)
        yield target
        target.close()
        return
    yield from _secantus(tmp_path_factory, "secantusdb-replset", "secantus")


@pytest.fixture(scope="session")
def mongo_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoTarget]:
    if MONGO_URI:
        pytest.skip("MONGO_URI is set: the contract suite runs once, on that server")
    yield from _secantus(tmp_path_factory, "secantusdb-standalone", None)
