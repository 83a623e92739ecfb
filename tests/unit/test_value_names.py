"""Field and table name checks on the write path (runtime/database/documents.py,
runtime/values/ids.py), including their fast paths."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.database.documents import check_document
from runtime.database.errors import InvalidDocumentError
from runtime.values.ids import InvalidTableNameError, check_table_name


@pytest.mark.parametrize("name", ["a\x7f", "café", "tab\there", "line\n", "\x00"])
def test_field_names_outside_printable_ascii_are_refused(name: str) -> None:
    with pytest.raises(InvalidDocumentError, match="printable ASCII"):
        check_document({name: 1})
    with pytest.raises(InvalidDocumentError, match="printable ASCII"):
        check_document({"nested": {name: 1}})


@pytest.mark.parametrize("name", [" spaced ", "a~z", "x!\"#%&'()*+,-./:;<=>?@[\\]^`{|}"])
def test_printable_ascii_field_names_are_stored(name: str) -> None:
    check_document({name: 1})


def test_a_table_name_checked_once_is_still_checked_for_its_reserved_prefix() -> None:
    check_table_name("_names_cache_probe", system_ok=True)  # well formed: remembered
    with pytest.raises(InvalidTableNameError, match="reserved for system tables"):
        check_table_name("_names_cache_probe")
    check_table_name("names_cache_probe")
    check_table_name("names_cache_probe")


@pytest.mark.parametrize("name", [["a"], {"a": 1}, 3, "", "has space", "x" * 65])
def test_bad_table_names_are_refused_with_the_rule(name: Any) -> None:
    with pytest.raises(InvalidTableNameError, match="letters, digits and underscores"):
        check_table_name(name)
