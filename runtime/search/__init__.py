"""Full-text search: the one tokenizer and search-expression parser every
engine shares (`text.py`) and BM25 scoring (`bm25.py`), so the embedded engine
(`runtime/store/sqlite_search.py`), a remote one and the scoring of a
mutation's own writes all agree on what a word is and how it ranks."""
