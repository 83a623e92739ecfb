"""`pagination_opts_validator` takes the options every official client sends
for a paginated query, and refuses what Convex's paginationOptsValidator does."""

from __future__ import annotations

import pytest

from runtime import pagination_opts_validator
from runtime.errors import ValidationError


@pytest.mark.parametrize(
    "opts",
    [
        {"numItems": 10.0, "cursor": None},
        {"numItems": 5.0, "cursor": "abc", "endCursor": None, "id": 3.0},
        {"numItems": 5.0, "cursor": None, "maximumRowsRead": 100.0, "maximumBytesRead": 1e6},
    ],
)
def test_accepts_what_the_clients_send(opts: dict[str, object]) -> None:
    pagination_opts_validator.validate(opts, "args.paginationOpts")


@pytest.mark.parametrize(
    "opts",
    [
        {"numItems": 10.0},  # the cursor is required (null for the first page)
        {"numItems": "10", "cursor": None},
        {"numItems": 10.0, "cursor": None, "pageSize": 3.0},
    ],
)
def test_refuses_what_convex_refuses(opts: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        pagination_opts_validator.validate(opts, "args.paginationOpts")
