"""`ctx.db`: what user code may do with its transaction, and nothing more.

The transaction (`runtime.database.transaction.Transaction`) also serves the
platform: platform records (`system_put`), snapshot import (`restore`), raw
index scans, the read and write sets. User code gets a narrow facade over it
instead, as Convex's user-facing model does:

- queries: `get`, `query`, `normalize_id`, `system` (`DatabaseReader`);
- mutations: those plus `insert`, `patch`, `replace`, `delete` (`DatabaseWriter`);
- `system`: `get`, `query`, `normalize_id` over the platform's system tables
  (names starting with "_"), read-only everywhere (`SystemReader`).

The facades have `__slots__` and keep the transaction in a name-mangled slot,
so `ctx.db.system_put`, `ctx.db.restore` or `ctx.db._tx` do not exist; it is
a boundary against mistakes, not a sandbox (Python code can always reach an
object's references through introspection).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from runtime.database.errors import ReadOnlyError
from runtime.errors import InvalidIdError
from runtime.values import InvalidTableNameError, is_id_for, parse_id, table_tag

if TYPE_CHECKING:
    from runtime.database.query import QueryInitializer
    from runtime.database.transaction import Transaction

__all__ = ["SYSTEM_TABLES", "DatabaseReader", "DatabaseWriter", "SystemReader"]

SYSTEM_TABLES = ("_scheduled_functions", "_storage")
"""The platform's tables, readable through `ctx.db.system` (their issues add
the documents; each new system table is named here)."""

_WRITES = ("insert", "patch", "replace", "delete")


_SYSTEM_TAGS = {table_tag(t): t for t in SYSTEM_TABLES}


def _system_table_of(doc_id: object) -> str | None:
    parsed = parse_id(doc_id)
    return None if parsed is None else _SYSTEM_TAGS.get(parsed[1])


class SystemReader:
    """`ctx.db.system`: reads of the system tables."""

    __slots__ = ("__tx",)

    def __init__(self, tx: Transaction) -> None:
        self.__tx = tx

    def get(self, doc_id: str) -> dict[str, Any] | None:
        if parse_id(doc_id) is not None and _system_table_of(doc_id) is None:
            raise InvalidIdError(
                f"db.system.get: {doc_id} is not an id of a system table "
                f"({', '.join(SYSTEM_TABLES)}); read your own tables with ctx.db.get"
            )
        return self.__tx.get(doc_id)

    def query(self, table: str) -> QueryInitializer:
        if table not in SYSTEM_TABLES:
            raise InvalidTableNameError(
                f"db.system.query: {table!r} is not a system table (they are "
                f"{', '.join(SYSTEM_TABLES)}); query your own tables with ctx.db.query"
            )
        result: QueryInitializer = self.__tx.query(table, system=True)
        return result

    def normalize_id(self, table: str, doc_id: str) -> str | None:
        if table not in SYSTEM_TABLES:
            raise InvalidTableNameError(
                f"db.system.normalize_id: {table!r} is not a system table; "
                "use ctx.db.normalize_id for your own tables"
            )
        return doc_id if is_id_for(table, doc_id) else None

    def __repr__(self) -> str:
        return "<ctx.db.system>"


class DatabaseReader:
    """`ctx.db` in a query: reads only."""

    __slots__ = ("__tx", "system")

    def __init__(self, tx: Transaction) -> None:
        self.__tx = tx
        self.system = SystemReader(tx)

    def get(self, doc_id: str) -> dict[str, Any] | None:
        """The document with this id, or None."""
        _refuse_system_id("get", doc_id)
        return self.__tx.get(doc_id)

    def query(self, table: str) -> QueryInitializer:
        """A query over `table` (see `runtime.database.query`)."""
        _refuse_system_table("query", table)
        result: QueryInitializer = self.__tx.query(table)
        return result

    def normalize_id(self, table: str, doc_id: str) -> str | None:
        """`doc_id` if it is an id of `table`, else None."""
        _refuse_system_table("normalize_id", table)
        return self.__tx.normalize_id(table, doc_id)

    def __getattr__(self, name: str) -> Any:
        if name in _WRITES:
            return _read_only(name)
        raise AttributeError(
            f"ctx.db has no attribute {name!r}: it offers get, query, normalize_id and "
            "system (and insert, patch, replace, delete in mutations)"
        )

    def __repr__(self) -> str:
        return "<ctx.db (read-only)>"


class DatabaseWriter(DatabaseReader):
    """`ctx.db` in a mutation: reads and buffered writes."""

    __slots__ = ("__tx",)

    def __init__(self, tx: Transaction) -> None:
        super().__init__(tx)
        self.__tx = tx

    def insert(self, table: str, document: dict[str, Any]) -> str:
        """Insert a document; returns its new id."""
        return self.__tx.insert(table, document)

    def patch(self, doc_id: str, fields: dict[str, Any]) -> None:
        """Shallow-merge `fields` into the document (UNDEFINED removes a field)."""
        _refuse_system_id("patch", doc_id)
        self.__tx.patch(doc_id, fields)

    def replace(self, doc_id: str, document: dict[str, Any]) -> None:
        """Replace the document's fields (its system fields stay)."""
        _refuse_system_id("replace", doc_id)
        self.__tx.replace(doc_id, document)

    def delete(self, doc_id: str) -> None:
        _refuse_system_id("delete", doc_id)
        self.__tx.delete(doc_id)

    def __repr__(self) -> str:
        return "<ctx.db>"


def _read_only(op: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise ReadOnlyError(
            f"db.{op} in a query: queries are read-only; write from a mutation instead"
        )

    refuse.__name__ = op
    return refuse


def _refuse_system_id(op: str, doc_id: object) -> None:
    table = _system_table_of(doc_id)
    if table is None:
        return
    if op == "get":
        raise InvalidIdError(
            f"db.get: {doc_id} is a document of the system table {table}; "
            "read it with ctx.db.system.get"
        )
    raise InvalidIdError(
        f"db.{op}: {doc_id} is a document of the system table {table}, which only the "
        "platform writes (through ctx.storage and ctx.scheduler)"
    )


def _refuse_system_table(op: str, table: object) -> None:
    if isinstance(table, str) and table.startswith("_"):
        raise InvalidTableNameError(
            f'db.{op}("{table}"): tables whose names start with "_" are system tables; '
            f'read them with ctx.db.system.{op}("{table}")'
        )
