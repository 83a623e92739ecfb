"""`define_schema` / `define_table`: tables, indexes and search indexes.

The rules are the seed's (checked when the schema is defined, with a message
that says what to do): at most 32 indexes per table and 16 fields per index
(counting the `_creationTime` appended to each), index names are identifiers
that do not start with `_` and are not `by_id` / `by_creation_time` (the
built-in indexes), no duplicate or `_`-prefixed fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import SchemaError
from runtime.limits import INDEX_FIELDS, INDEXES_PER_TABLE, TABLE_NAME_CHARS
from runtime.values import Validator, as_validator, check_table_name, table_tag, v
from runtime.values.coercion import coerce_numbers
from runtime.values.validators import _Any, _Object, _Union

__all__ = [
    "SchemaDefinition",
    "SearchIndexDefinition",
    "TableDefinition",
    "define_schema",
    "define_table",
    "index_fields",
]

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")  # so no leading "_" (reserved)
_FIELD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


@dataclass(frozen=True)
class SearchIndexDefinition:
    search_field: str
    filter_fields: tuple[str, ...]


def _object_members(validator: Validator) -> list[_Object] | None:
    """The object validators a document may match (None: anything goes)."""
    if isinstance(validator, _Any):
        return None
    if isinstance(validator, _Object):
        return [validator]
    if isinstance(validator, _Union) and all(isinstance(m, _Object) for m in validator.members):
        return [m for m in validator.members if isinstance(m, _Object)]
    raise SchemaError(
        "a table's validator must be an object (a dict of validators), a union of objects, "
        f"or v.any(); got {validator.describe()}"
    )


def _field_validator(members: list[_Object], path: str) -> list[Validator]:
    found: list[Validator] = []
    for m in members:
        cur: Validator | None = m
        for part in path.split("."):
            inner = cur.inner if cur is not None and cur.is_optional else cur  # type: ignore[attr-defined]
            if isinstance(inner, _Object) and part in inner.fields:
                cur = inner.fields[part]
            elif isinstance(inner, _Any):
                cur = inner
                break
            else:
                cur = None
                break
        if cur is not None:
            found.append(cur)
    return found


class TableDefinition:
    def __init__(self, validator: Validator) -> None:
        self.validator = validator
        self._members = _object_members(validator)
        self.indexes: dict[str, list[str]] = {}
        self.search_indexes: dict[str, SearchIndexDefinition] = {}

    def _check_name(self, name: str, what: str) -> None:
        if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > TABLE_NAME_CHARS:
            raise SchemaError(
                f"{what} name {name!r}: use letters, digits and underscores, starting with a letter"
            )
        if name in self.indexes or name in self.search_indexes:
            raise SchemaError(f'{what} name "{name}" is used twice on this table')

    def _check_field(self, index: str, f: str) -> None:
        if not isinstance(f, str) or not f:
            raise SchemaError(f'index "{index}": field names are non-empty strings, got {f!r}')
        if f.startswith("_"):
            hint = (
                " (_creationTime is appended to every index automatically)"
                if f == "_creationTime"
                else ""
            )
            raise SchemaError(f'index "{index}": field "{f}" is reserved{hint}')
        if not _FIELD_RE.match(f):
            raise SchemaError(f'index "{index}": {f!r} is not a field path like "a" or "a.b"')
        if self._members is not None and not _field_validator(self._members, f):
            raise SchemaError(f'index "{index}": the table has no field "{f}"')

    def index(self, name: str, fields: list[str]) -> TableDefinition:
        self._check_name(name, "index")
        if name in ("by_id", "by_creation_time"):
            # Reserved for the built-in indexes. Other by_ names (by_owner)
            # are the seed's own examples and the issue-4 API, so allowed.
            raise SchemaError(f'index name "{name}" is reserved: it is a built-in index')
        if not isinstance(fields, list | tuple) or not fields:
            raise SchemaError(f'index "{name}": give a non-empty list of fields')
        if len(fields) + 1 > INDEX_FIELDS:
            raise SchemaError(
                f'index "{name}" has {len(fields)} fields; at most {INDEX_FIELDS - 1} '
                f"(the appended _creationTime makes {INDEX_FIELDS}: INDEX_FIELDS)"
            )
        if len(set(fields)) != len(fields):
            raise SchemaError(f'index "{name}" lists a field twice: {list(fields)}')
        for f in fields:
            self._check_field(name, f)
        if len(self.indexes) >= INDEXES_PER_TABLE:
            raise SchemaError(f"at most {INDEXES_PER_TABLE} indexes per table (INDEXES_PER_TABLE)")
        self.indexes[name] = list(fields)
        return self

    def search_index(
        self, name: str, *, search_field: str, filter_fields: list[str] | None = None
    ) -> TableDefinition:
        self._check_name(name, "search index")
        filters = list(filter_fields or [])
        for f in [search_field, *filters]:
            self._check_field(name, f)
        if len(set(filters)) != len(filters) or search_field in filters:
            raise SchemaError(f'search index "{name}" lists a field twice')
        if self._members is not None:
            kinds = _field_validator(self._members, search_field)
            for k in kinds:
                inner = getattr(k, "inner", k)
                if not isinstance(inner, _Any) and inner.describe() != "string":
                    raise SchemaError(
                        f'search index "{name}": search_field "{search_field}" must be a string '
                        f"field, not {inner.describe()}"
                    )
        self.search_indexes[name] = SearchIndexDefinition(search_field, tuple(filters))
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "validator": self.validator.to_json(),
            "indexes": [{"name": n, "fields": f} for n, f in self.indexes.items()],
            "searchIndexes": [
                {"name": n, "searchField": s.search_field, "filterFields": list(s.filter_fields)}
                for n, s in self.search_indexes.items()
            ],
        }


def define_table(validator: Any = None) -> TableDefinition:
    """A table whose documents match `validator` (a dict of validators, an
    object or union of objects, or v.any(); None = v.any())."""
    return TableDefinition(v.any() if validator is None else as_validator(validator))


@dataclass
class SchemaDefinition:
    tables: dict[str, TableDefinition]
    schema_validation: bool = True
    strict_table_name_types: bool = True
    _tags: dict[bytes, str] = field(default_factory=dict, repr=False)

    def table(self, name: str) -> TableDefinition | None:
        return self.tables.get(name)

    def table_of_tag(self, tag: bytes) -> str | None:
        """The schema's table whose document ids carry `tag` (see `table_tag`)."""
        return self._tags.get(tag)

    def validate_document(self, table: str, doc: dict[str, Any]) -> None:
        if not self.schema_validation:
            return
        tdef = self.tables.get(table)
        if tdef is None:
            return
        if "_id" in doc or "_creationTime" in doc:
            doc = {k: x for k, x in doc.items() if k not in ("_id", "_creationTime")}
        tdef.validator.validate(doc, "document")

    def query_value(self, table: str, path: str, value: Any) -> Any:
        """A value compared with field `path` in an index range (`q.eq`,
        `q.gt`...), as a write would store it: a Python `int` where the
        field's validator says `v.number()` becomes that float64, so
        `q.eq("score", 0)` finds the `0.0` a write of `0` stored. Kept as it
        is when any of the field's validators accepts it as it is."""
        if type(value) is not int or not self.schema_validation:
            return value
        tdef = self.tables.get(table)
        members = _object_members(tdef.validator) if tdef is not None else None
        if not members:
            return value
        converted = [coerce_numbers(fv, value) for fv in _field_validator(members, path)]
        if not converted or any(c is value for c in converted):
            return value
        return converted[0]

    def prepare_document(self, table: str, doc: dict[str, Any]) -> dict[str, Any]:
        """The document a write stores: `doc` with each Python `int` that the
        table's validator expects as a float64 (`v.number()`) converted to
        that float (runtime/values/coercion.py), then validated. `doc` itself
        when there is nothing to convert; never mutated. Writes (insert,
        patch, replace, import) go through this; `validate_document` checks
        documents as they are (stored ones, on a schema push)."""
        if not self.schema_validation:
            return doc
        tdef = self.tables.get(table)
        if tdef is None:
            return doc
        doc = coerce_numbers(tdef.validator, doc)
        self.validate_document(table, doc)
        return doc

    def to_json(self) -> dict[str, Any]:
        return {
            "tables": {n: t.to_json() for n, t in sorted(self.tables.items())},
            "schemaValidation": self.schema_validation,
        }


def define_schema(
    tables: dict[str, TableDefinition],
    *,
    schema_validation: bool = True,
    strict_table_name_types: bool = True,
) -> SchemaDefinition:
    if not isinstance(tables, dict):
        raise SchemaError("define_schema takes a dict of table name -> define_table(...)")
    tags: dict[bytes, str] = {}
    for name, tdef in tables.items():
        try:
            check_table_name(name)
        except Exception as e:
            raise SchemaError(str(e)) from None
        if not isinstance(tdef, TableDefinition):
            raise SchemaError(f'table "{name}": use define_table(...), got {type(tdef).__name__}')
        tag = table_tag(name)
        if tag in tags:
            raise SchemaError(
                f'tables "{tags[tag]}" and "{name}" have colliding id tags; rename one of them'
            )
        tags[tag] = name
    return SchemaDefinition(dict(tables), schema_validation, strict_table_name_types, tags)


def index_fields(schema: SchemaDefinition | None, table: str, index: str) -> list[str] | None:
    """The full key fields of an index, or None if the table has no such index."""
    if index == "by_creation_time":
        return ["_creationTime"]
    if index == "by_id":
        return ["_id"]
    tdef = schema.table(table) if schema is not None else None
    if tdef is None or index not in tdef.indexes:
        return None
    return [*tdef.indexes[index], "_creationTime"]
