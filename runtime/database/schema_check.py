"""Before a schema goes into force: do the stored documents satisfy it?

Every table the new schema validates is read in full (through its
`by_creation_time` entries, one page at a time); the first documents that
fail are reported with their ids and the validator's complaint, so the push
can be refused with the old schema left in force.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.errors import SchemaError, ValidationError
from runtime.schema import SchemaDefinition
from runtime.store.port import Store

from . import layout
from .backfill import table_id_pages

__all__ = ["SchemaViolation", "check_documents", "find_violations"]

_PAGE = 100


@dataclass(frozen=True)
class SchemaViolation:
    table: str
    id: str
    problem: str


def find_violations(
    store: Store, schema: SchemaDefinition, *, limit: int = 10
) -> list[SchemaViolation]:
    found: list[SchemaViolation] = []
    if not schema.schema_validation:
        return found
    for table in sorted(schema.tables):
        for ids in table_id_pages(store, table, _PAGE):
            for doc_id, item in zip(ids, store.get([layout.doc_key(i) for i in ids]), strict=True):
                if item is None:
                    continue
                try:
                    schema.validate_document(table, layout.decode_document_body(item.value))
                except ValidationError as e:
                    found.append(SchemaViolation(table, doc_id, str(e)))
                    if len(found) >= limit:
                        return found
    return found


def check_documents(store: Store, schema: SchemaDefinition) -> None:
    """Raise SchemaError naming the offending documents, if any."""
    violations = find_violations(store, schema)
    if not violations:
        return
    shown = "\n".join(f"  {v.table} {v.id}: {v.problem}" for v in violations)
    raise SchemaError(
        "the new schema was not applied (the previous one stays in force): existing "
        f"documents do not match it{' (first 10 shown)' if len(violations) >= 10 else ''}:\n"
        f"{shown}\nFix or delete those documents, or relax the schema (v.optional, "
        "v.union), then save again.",
        violations=[{"table": v.table, "id": v.id, "problem": v.problem} for v in violations],
    )
