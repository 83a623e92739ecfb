"""The OpenSearch adapter's checks (tests/aws/test_opensearch_adapter.py) against a
real OpenSearch server: set OPENSEARCH_URL (e.g. http://127.0.0.1:9200 for a
local container without security, unsigned) to run them; OPENSEARCH_SIGV4=1
signs requests with boto3's default credentials (an Amazon OpenSearch Service
domain, `OPENSEARCH_URL=https://search-....es.amazonaws.com`).

Each test uses its own index prefix and drops its index afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from runtime.search.opensearch import OpenSearchEngine

from .test_opensearch_adapter import (
    KEY,
    test_check_a_short_prefix_finds_every_match_and_scores_its_first_expansions,
    test_check_create_and_drop_are_idempotent,
    test_check_entries_of_a_missing_index_are_skipped_not_created,
    test_check_filters_including_a_missing_field,
    test_check_large_batches_go_in_several_bulk_requests,
    test_check_prefix_only_on_the_last_term,
    test_check_reindex_delete_and_versions,
    test_check_relevance_order,
    test_check_stats_and_own_write_scores_match_the_engine,
    test_check_the_adapter_is_a_stream_fed_search_engine,
    test_check_ties_rank_newest_first_then_by_id_and_limit,
    test_check_words_beyond_ascii_match_as_our_tokenizer_says,
)

URL = os.environ.get("OPENSEARCH_URL", "")

pytestmark = pytest.mark.skipif(
    not URL,
    reason="OPENSEARCH_URL is not set: no OpenSearch server to run the adapter's checks "
    "against (none can be installed here; LocalOpenSearch runs them in test_opensearch_adapter.py)",
)

__all__ = [
    "test_check_a_short_prefix_finds_every_match_and_scores_its_first_expansions",
    "test_check_create_and_drop_are_idempotent",
    "test_check_entries_of_a_missing_index_are_skipped_not_created",
    "test_check_filters_including_a_missing_field",
    "test_check_large_batches_go_in_several_bulk_requests",
    "test_check_prefix_only_on_the_last_term",
    "test_check_reindex_delete_and_versions",
    "test_check_relevance_order",
    "test_check_stats_and_own_write_scores_match_the_engine",
    "test_check_the_adapter_is_a_stream_fed_search_engine",
    "test_check_ties_rank_newest_first_then_by_id_and_limit",
    "test_check_words_beyond_ascii_match_as_our_tokenizer_says",
]


@pytest.fixture
def engine() -> Iterator[OpenSearchEngine]:
    """The adapter on OPENSEARCH_URL (overrides the LocalOpenSearch one for the
    imported checks)."""
    eng = OpenSearchEngine(
        URL,
        prefix=f"pyconvex-live-{uuid.uuid4().hex[:10]}",
        sigv4=os.environ.get("OPENSEARCH_SIGV4", "") == "1",
    )
    yield eng
    eng.drop_index(KEY)
