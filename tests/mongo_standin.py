"""mongomock as a client factory for `MongoStore`: the in-process stand-in that the
contract suite and the store benchmark run the real Mongo store code against.

Not used by the service. mongomock 4.3 predates pymongo 4.11, whose UpdateOne/ReplaceOne
pass a new `sort=` keyword to the bulk builder (mongomock issue #912, fix PR #933 still
open), so `bulk_write` fails with a TypeError. `mongomock_client` teaches the builder
that keyword: None is dropped, anything else raises NotImplementedError, which is
mongomock's own rule for options it does not implement. It also makes each write
atomic, as a server's are (mongomock's are not thread-safe).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any


def _accept_unset_sort(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, sort: Any = None, **kwargs: Any) -> Any:
        if sort is not None:
            raise NotImplementedError("mongomock does not implement sort= in bulk writes")
        return method(self, *args, **kwargs)

    wrapper.__cronwell_sort_shim__ = True  # type: ignore[attr-defined]
    return wrapper


@functools.cache
def _patch_bulk_builder() -> None:
    from mongomock.collection import BulkOperationBuilder

    for name in ("add_update", "add_replace"):
        method = getattr(BulkOperationBuilder, name)
        if not getattr(method, "__cronwell_sort_shim__", False):
            setattr(BulkOperationBuilder, name, _accept_unset_sort(method))


#: one write at a time, as a server applies each write to a document atomically:
#: mongomock's `$inc` is a read-modify-write in Python, so two threads bumping one
#: counter could lose a count (seen as 38 of 40 in the contract suite's threaded case)
_WRITE_LOCK = threading.RLock()


def _one_write_at_a_time(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _WRITE_LOCK:
            return method(*args, **kwargs)

    wrapper.__cronwell_write_lock__ = True  # type: ignore[attr-defined]
    return wrapper


@functools.cache
def _patch_writes() -> None:
    from mongomock.collection import Collection

    for name in ("_insert", "_update", "_delete", "_find_and_modify"):
        method = getattr(Collection, name)
        if not getattr(method, "__cronwell_write_lock__", False):
            setattr(Collection, name, _one_write_at_a_time(method))


def mongomock_client(*args: Any, **kwargs: Any) -> Any:
    """A `mongomock.MongoClient` that takes pymongo 4.11+ bulk operations."""
    import mongomock

    _patch_bulk_builder()
    _patch_writes()
    return mongomock.MongoClient(*args, **kwargs)
