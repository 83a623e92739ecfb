"""Every limit the platform enforces, with its number and the reason for it.

Limits live here and nowhere else; the code that enforces one imports it by
name, and the error it raises names it (see `LimitExceeded`), so a user who
hits a limit can find it in this file and in the README.
"""

from __future__ import annotations

from runtime.errors import PlatformError

__all__ = [
    "ARRAY_ELEMENTS",
    "BYTES_READ_PER_FUNCTION",
    "BYTES_WRITTEN_PER_MUTATION",
    "DOCUMENTS_READ_PER_FUNCTION",
    "DOCUMENTS_SCANNED_PER_FUNCTION",
    "DOCUMENTS_WRITTEN_PER_MUTATION",
    "DOCUMENT_BYTES",
    "ERROR_VALUE_CHARS",
    "FIELDS_PER_OBJECT",
    "FIELD_NAME_CHARS",
    "INDEXES_PER_TABLE",
    "INDEX_FIELDS",
    "INDEX_KEY_BYTES",
    "NESTING_DEPTH",
    "OCC_MAX_ATTEMPTS",
    "SEARCH_FIELDS",
    "SEARCH_FILTERS",
    "SEARCH_FILTER_FIELDS",
    "SEARCH_RESULTS",
    "SEARCH_TERMS",
    "TABLE_NAME_CHARS",
    "TABLE_VERSION_SHARDS",
    "TRANSACTION_BYTES",
    "TRANSACTION_ITEMS",
    "VALUE_CHUNK_BYTES",
    "LimitExceeded",
    "check_limit",
]

# --- values and documents -------------------------------------------------

DOCUMENT_BYTES = 1 << 20
"""1 MiB per document (its JSON encoding). The seed's limit: big documents make
every read and every re-run of a reactive query expensive; split them into
several documents linked by ids."""

NESTING_DEPTH = 16
"""Arrays and objects nest at most 16 levels (the seed's limit); deep trees
belong in separate documents."""

FIELDS_PER_OBJECT = 1024
"""An object has at most 1,024 fields (Convex's limit); use an array of
objects or a separate table for open-ended key sets."""

ARRAY_ELEMENTS = 8192
"""An array holds at most 8,192 elements (Convex's limit); long lists belong in
a table with an index."""

FIELD_NAME_CHARS = 1024
"""A field name is 1..1,024 characters of printable ASCII, and may not start
with `$` (reserved for the wire encoding); top-level names starting with `_`
are reserved for system fields."""

TABLE_NAME_CHARS = 64
"""Table and index names: 1..64 characters of [A-Za-z0-9_]."""

# --- indexes ----------------------------------------------------------------

INDEXES_PER_TABLE = 32
"""The seed's limit: every index is maintained on every write of the table."""

INDEX_FIELDS = 16
"""The seed's limit, counting the `_creationTime` appended to every index."""

INDEX_KEY_BYTES = 1000
"""An index key (the order-preserving encoding of the indexed values plus
`_creationTime` and `_id`) is at most 1,000 bytes: DynamoDB caps a sort key at
1,024 bytes. Index a shorter field (or a prefix of a long string) instead."""

# --- per function execution (the seed's read/write limits) -------------------

DOCUMENTS_SCANNED_PER_FUNCTION = 16_384
"""Index entries a query or mutation may walk, matching a filter or not. A
function that needs more should use an index with a narrower range, or
paginate."""

DOCUMENTS_READ_PER_FUNCTION = 16_384
"""Documents a function may read by id (`db.get`, and the reads behind
patch/replace/delete); documents met in index scans count as scanned."""

BYTES_READ_PER_FUNCTION = 8 << 20
"""8 MiB of document data read by one query or mutation."""

DOCUMENTS_WRITTEN_PER_MUTATION = 8_192
"""Documents one mutation may insert, patch, replace or delete (Convex's
limit; on DynamoDB the transaction cap below binds far earlier)."""

BYTES_WRITTEN_PER_MUTATION = 8 << 20
"""8 MiB of document data written by one mutation."""

# --- transactions (what DynamoDB imposes, enforced on every store) -----------

TRANSACTION_ITEMS = 100
"""DynamoDB's TransactWriteItems carries at most 100 items. Each document
written, index entry changed, range version bumped and read check not merged
into a write is one item (see `runtime/database/commit.py` for the costs of
common shapes). Not a cap of a mutation: a commit past it is one SQLite
transaction locally and DynamoDB's large-commit protocol on AWS (several calls
per 100 items); it is the threshold past which the call log flags a commit's
cost (`[large commit: N DynamoDB items]`)."""

TRANSACTION_BYTES = 4_000_000
"""DynamoDB's TransactWriteItems carries at most 4 MB: a limit of one native
call, refused by the core only on a store that commits at most one
(`Store.max_transaction_items` not None); a mutation's bytes are capped by
BYTES_WRITTEN_PER_MUTATION."""

VALUE_CHUNK_BYTES = 350_000
"""DynamoDB items are at most 400 KB, so a stored value is split into chunks of
this size; each chunk past the first is one more transaction item."""

TABLE_VERSION_SHARDS = 8
"""The whole-table range version is sharded 8 ways so concurrent writers of a
busy table rarely touch the same item (DynamoDB cancels concurrent
transactions on one item); a reader of a whole table checks all 8."""

OCC_MAX_ATTEMPTS = 16
"""A mutation that conflicts is re-run up to 16 times, with jittered
exponential backoff, before it fails with OCC_CONFLICT."""


class LimitExceeded(PlatformError):
    """A function went past one of the limits above."""

    code = "LIMIT_EXCEEDED"


def check_limit(name: str, used: int, limit: int, advice: str) -> None:
    """Raise `LimitExceeded` naming `name` when `used` is past `limit`."""
    if used > limit:
        raise LimitExceeded(
            f"{name} limit exceeded: {used:,} > {limit:,}. {advice}",
            limit=name,
            used=used,
            max=limit,
        )


# --- function calls ------------------------------------------------------------

ARGUMENTS_BYTES = 16 << 20
"""A function call's arguments (and an HTTP API request body) are at most
16 MiB. Store bigger payloads as files and pass their ids."""

RETURN_VALUE_BYTES = 16 << 20
"""A function's return value is at most 16 MiB once encoded."""

HTTP_ACTION_BODY_BYTES = 20 << 20
"""HTTP action requests and responses are at most 20 MiB (the seed's limit)."""

ACTION_TIMEOUT_SECONDS = 300.0
"""Actions time out after 5 minutes (the seed's limit)."""

LOG_LINES_PER_FUNCTION = 256
"""Lines of print/logging output kept per call; the rest are counted and dropped."""

LOG_LINE_CHARS = 32_768
"""A longer log line is truncated."""

# --- environment variables (the seed's limits) ----------------------------------

ENV_VARS = 100
ENV_NAME_CHARS = 40
"""Names start with a letter and hold letters, digits and underscores."""
ENV_VALUE_BYTES = 8192

# --- snapshot import --------------------------------------------------------------

IMPORT_BYTES = 256 << 20
"""An import file is at most 256 MiB: it is validated whole before anything
is written. Split bigger data into several files (each import is all or
nothing on its own)."""

# --- client input (HTTP API, sync messages, imports) ------------------------------

CLIENT_JSON_DEPTH = 32
"""JSON from a client nests at most 32 levels. Values nest at most
NESTING_DEPTH (16); the envelope around them adds a few (a sync message puts
arguments 4 levels down, a tagged `{"$integer": ...}` one more), so 32 leaves
room for every legitimate message while the parser's recursion stays small.
Deeper JSON is refused with a 4xx, never a RecursionError."""

CLIENT_JSON_INT_DIGITS = 400
"""An integer literal in client JSON has at most 400 digits. A float64 holds
at most 309 integer digits, and an int64 is 19; longer literals serve no
value and cost quadratic time to convert (Python's own guard,
`sys.set_int_max_str_digits`, is 4,300 and raises a bare ValueError)."""

ADMIN_KEY_MIN_CHARS = 43
"""An admin key is at least 43 printable ASCII characters (no spaces): 32
random bytes, the least a key should hold, take 43 characters in base64url
(`secrets.token_urlsafe(32)`) and 64 in hex (`secrets.token_hex(32)`, what the
dev server generates). A shorter key cannot hold 32 random bytes."""

# --- the sync protocol (WebSocket) ------------------------------------------------

SYNC_MESSAGE_BYTES = 128 * 1024
"""A server message on the sync socket is at most 128 KiB: API Gateway carries
WebSocket messages of at most 128 KiB, so larger Transitions are split into
several chained ones (PROTOCOL rule 5: never TransitionChunk)."""

SYNC_CONNECTIONS = 4096
"""Sync sockets one dev server holds open at once. Each costs a session, its
subscriptions, an outbox and a file descriptor; past this a new socket gets a
FatalError and is closed (code 1013, try again later) instead of growing
memory without bound. 4,096 leaves room for the 1,000-client benchmarks and
stays under common descriptor limits. (On AWS, API Gateway and the WebSocket
Lambda's reserved concurrency bound it.)"""

SYNC_QUERIES_PER_CONNECTION = 1000
"""Subscriptions one connection may hold: more ends it with a FatalError.
Every subscription is a query re-run on writes it read; a page of an app
subscribes to tens, not thousands."""

SYNC_UNSENT_BYTES = 16 << 20
"""Bytes queued for one connection and not yet written to its socket. A client
that subscribes to large results and does not read would otherwise hold the
server's memory; past 16 MiB (over a hundred full-size messages) it is closed
as a slow consumer (code 1008) and may reconnect and resync."""

SYNC_UNSENT_MESSAGES = 10_000
"""Messages queued for one connection (small ones too) before it is closed as
a slow consumer, like SYNC_UNSENT_BYTES."""

SYNC_PING_SECONDS = 15.0
"""Seconds of silence on a socket before the server sends a Ping (PROTOCOL
rule 6: clients reconnect when a socket stays silent); PYCONVEX_PING_SECONDS
overrides it on the dev server."""

SYNC_REORDER_WAIT_SECONDS = 5.0
"""On AWS one connection's messages may run in concurrent Lambdas: a
ModifyQuerySet or Authenticate that overtook the one before it waits up to
this long for it, then the connection ends with a FatalError; a Mutation or
Action that overtook an earlier request waits as long, then runs."""

SYNC_ID_MAX = 2**53 - 1
"""Request ids, query ids and version numbers in sync messages are integers in
0..2^53-1 (what a JavaScript client can count exactly); anything else (-1,
2^64, 1e999, NaN) ends the connection with a FatalError."""

SYNC_STORED_WORKERS = 8
"""On AWS, the refreshes (one per touched query) and the pushes (one per
connection) a stream batch or a socket mutation runs at once: each is a few
DynamoDB and Management API requests in sequence, so a write watched by 100
connections costs the stream Lambda about 100 / 8 push latencies, not 100;
more threads would mostly queue on the Lambda's one or two vCPUs."""

SYNC_SESSION_ID_CHARS = 128
"""A sync session id (the client's `Connect.sessionId`, a UUID in the official
clients) is 1..128 printable ASCII characters: it names store records."""

MUTATION_RECORD_RETENTION_SECONDS = 24 * 3600.0
"""How long the record of a mutation sent over the socket (its result under
(session, request id), for a reconnecting client that re-sends it) is kept.
A client re-sends only mutations it has no answer for, when it reconnects;
one that comes back after a day (a laptop asleep) would get its mutation
applied again. Records are trimmed as new ones are written (see
`runtime/functions/dedupe.py`), so they take space for one day of socket
mutations."""

MUTATION_RECORD_SWEEP = 4
"""Expired mutation records deleted after each new one (at most): more than
one per record, so expired records never pile up."""

MUTATION_RECORD_SWEEP_SECONDS = 60.0
"""On AWS, how often a socket connection's mutations sweep expired records
when the last sweep found fewer than MUTATION_RECORD_SWEEP (nothing piled
up): a sweep is a request, and records expire a day after they are made, so
a minute's delay keeps at most a minute more of them. A sweep that finds a
full page sweeps again on the next mutation, so a backlog still drains at
MUTATION_RECORD_SWEEP per mutation."""

ACTION_WORKERS = 16
"""Actions (over HTTP and the socket) running at once in one server process:
they run in a pool of their own, so slow actions (an action may take 5
minutes) queue behind each other and never hold the threads that queries and
mutations run on. More wait for a free worker."""

CHANGE_LOG_ENTRIES = 100_000
"""The SQLite change log (the feed the dev server's sync hub tails) keeps at
least the last 100,000 committed writes; older ones are deleted as new ones
are written. A reader that falls further behind than that (a hub step stuck
for a long import) gets `FeedTrimmed` and resyncs: it re-runs every live
query instead of missing a change."""

RANGE_VERSIONS_HELD = 200_000
"""The SQLite committer holds the versions of at most 200,000 range keys in
memory (about 30 MB at its fullest: one per table shard and per distinct value
of an index's first field recently written). Past it the least recently
written is dropped into the floor every unknown key reports, which can only
make a concurrent transaction re-run, never miss a write
(`runtime/store/range_versions.py`)."""

GROUP_COMMIT_TRANSACTIONS = 64
"""The SQLite committer applies at most 64 waiting transactions in one SQLite
transaction (group commit): enough to share one commit among every thread of
a busy server, few enough that one group's write stays short."""

IMPORT_LINE_BYTES = 2 * DOCUMENT_BYTES
"""A line of an import file is at most 2 MiB. An exported line is one
document in compact JSON, so under DOCUMENT_BYTES (1 MiB) plus its system
fields; twice that leaves room for files written with spaces or `\\u`
escapes. Lines are read with this cap, so a line past it (a zip that
inflates to one huge line) is refused, naming it, after 2 MiB is read. The
lines of one import add up to at most IMPORT_BYTES uncompressed."""

# --- pagination (runtime/database/pagination.py) ----------------------------

PAGE_SPLIT_RECOMMENDED_FRACTION = 0.75
"""A page answers `pageStatus: "SplitRecommended"` (with a `splitCursor`)
once it has read more than 3/4 of what it may read: of its
`maximumRowsRead` (or DOCUMENTS_SCANNED_PER_FUNCTION), of its
`maximumBytesRead` (or BYTES_READ_PER_FUNCTION), or holds more than 3/4 of
ARRAY_ELEMENTS documents (a page is returned as one array). Convex's
threshold: a live page that keeps growing is split by the client before a
re-run hits a hard limit and fails."""

# --- nested actions and stopping (issue 12) ----------------------------------------

ACTION_CALL_DEPTH = 8
"""`ctx.run_action` nests at most 8 actions below the one a client, an HTTP
action or the scheduler started (a chain of 9). Each level holds a thread
while it waits for the one below, so an action that calls itself with no end
(directly, or A -> B -> A) used to nest until the process ran out of
threads (~11,800 levels in 5 s, then "can't start new thread"). Whether a
recursion ends cannot be known in advance, so the depth is capped; 8 is
Convex's cap on nested function calls (MAX_REACTOR_CALL_DEPTH). Share code
between actions as plain Python functions rather than nested actions
(see `runtime/functions/action_calls.py`)."""

ACTION_CANCEL_SECONDS = 1.0
"""An `async def` action that timed out has its tasks cancelled and gets
this long to unwind (`finally` blocks) before its event loop is closed
anyway: a task that ignores its cancellation does not hold the call."""

SHUTDOWN_GRACE_SECONDS = 3
"""A stopping dev server (Ctrl-C, SIGTERM) waits this long for requests in
flight, then abandons what still runs (an action may take 5 minutes, a
stuck one forever), logs each abandoned action and exits."""

# --- queries at a fixed timestamp (issue 12, runtime/database/history.py) ------------

QUERY_AT_TS_CHANGES = 20_000
"""A query at a past timestamp (`/api/query_at_ts`, the JS client's
`consistentQuery`) undoes at most 20,000 document writes made since that
timestamp. The view keeps the old value of each changed document in memory
and reads every change after the timestamp before the query starts; the
timestamps are meant to be seconds old (Convex itself reads about 30 s into
the past), so a request that must undo more is refused with a message to
take a fresh timestamp rather than holding megabytes per call."""

# --- errors as Convex's clients show them (issue 12, runtime/functions/failure.py) ---

ERROR_VALUE_CHARS = 16384
"""A ConvexError's data longer than this, printed in its message, is cut with
`[...truncated]` (as Convex's clients cut it: `MAX_VALUE_FOR_ERROR_LEN`), so
a huge payload does not make a huge message and log line; the data itself
still reaches the caller whole as `errorData`."""

# --- auth: token verification (issue 13, runtime/auth/) ---------------------------

AUTH_CLOCK_LEEWAY_SECONDS = 10
"""A token's `exp`, `nbf` and `iat` are checked with this much slack either
way: the provider's clock and ours drift by a few seconds, and a token minted
a moment ago must not read as "not yet valid". Small, so an expired token is
refused within seconds of its expiry."""

AUTH_JWKS_REFETCH_SECONDS = 10
"""A token signed with a key id (`kid`) missing from a provider's cached key
set re-fetches the set (the provider rotated its keys) at most once per this
many seconds per provider: rotation works at once, and a flood of tokens with
made-up kids costs the provider one request per 10 s, not one per token."""

AUTH_JWKS_MAX_AGE_SECONDS = 3600
"""A provider's cached key set (and OIDC discovery document) is re-read after
an hour even without an unknown kid, so a key the provider withdrew (leaked,
revoked) stops verifying within the hour."""

AUTH_FETCH_RETRY_SECONDS = 2
"""After a failed fetch of a discovery document or key set, tokens for that
provider are refused with the same reason for this long before the next try:
a provider that is down is not asked again on every call."""

AUTH_FETCH_TIMEOUT_SECONDS = 5
"""A fetch of a discovery document or key set gives up after this long (a
call waiting for it is refused with the reason), so a slow provider holds
calls for seconds, not minutes."""

AUTH_FETCH_MAX_BYTES = 1_000_000
"""A discovery document or key set larger than this is refused: real ones are
a few kilobytes, and the body is held in memory to parse."""

# --- File storage (blob port, runtime/files) ---

BLOB_S3_PART_SIZE = 8 * 1024 * 1024
"""A blob is uploaded to S3 in parts of this many bytes (multipart upload past
one part): S3 wants parts of at least 5 MiB, and 8 MiB keeps the buffer held in
memory per upload small; with S3's 10,000-part cap a blob can reach ~80 GB,
far past any upload the platform accepts."""

BLOB_READ_CHUNK = 64 * 1024
"""Blobs are copied in chunks of this many bytes: large enough for throughput,
small enough that memory stays flat however big the file is."""

FILE_BYTES = 4 * 1024**3
"""The largest file the platform stores (an upload, `ctx.storage.store`): 4 GiB.
Convex names no hard cap for upload URLs; this one keeps a runaway or hostile
upload from filling the disk of a dev machine, and is far past what a web app
uploads. On AWS the HTTP Lambda's payload cap is lower (FILE_UPLOAD_LAMBDA_BYTES)."""

FILE_UPLOAD_LAMBDA_BYTES = 4 * 1024 * 1024
"""The largest upload the AWS shell accepts through the HTTP Lambda: a Lambda's
request payload is at most 6 MB, and API Gateway hands binary bodies to it in
base64 (4/3 the size) with the event's headers around it; 4 MiB of file fits.
A larger upload gets a 413 that names this limit."""

UPLOAD_URL_SECONDS = 3600
"""An upload URL expires an hour after it was generated (Convex's rule)."""

UPLOAD_MARKER_SWEEP = 16
"""After an upload, at most this many expired single-use markers are removed,
so the markers alive are those of the last hour plus a bounded backlog."""

# --- snapshots with files (export --include-files / import) ----------------------

IMPORT_ARCHIVE_BYTES = 64 << 30
"""A snapshot zip that carries files is at most 64 GiB, and its files add up
to at most as much once inflated: the server spools the upload to its disk
before checking it, and writes every file again as a blob, so this bounds the
disk one import can take (16 files of the FILE_BYTES maximum). The documents
in it stay under IMPORT_BYTES."""

# --- file routes (runtime/http/storage_routes.py) --------------------------------

UPLOAD_QUEUE_CHUNKS = 4
"""An upload's body passes from the server's event loop to the thread that
stores it through a queue of this many chunks (a chunk is what the server
read, ~64 KiB under uvicorn): the reader waits while it is full, so an upload
of any size holds a few chunks in memory, never the file. The thread takes
what is queued (up to this many chunks) in one hop: a 200 MB upload went from
0.70x to ~0.9x a plain file copy (bench/files.py)."""

# --- large commits on DynamoDB (issue 15, runtime/store/dynamodb_large.py) ----------

LARGE_COMMIT_DEADLINE_SECONDS = 30
"""A commit past TRANSACTION_ITEMS that has not reached its commit point this
long after it began may be aborted by anyone who meets one of its locks (a
reader, a writer, the next large commit's recovery): a crashed committer
holds its keys at most this long. Long enough for 8,192 documents' locks
(tens of transactions in parallel, about a second on DynamoDB)."""

LARGE_COMMIT_THREADS = 8
"""Parallel calls of one large commit (staging, locking, applying): enough to
hide round trips; each is one TransactWriteItems or BatchWriteItem."""

LARGE_COMMIT_RECOVER = 4
"""Crashed large commits a large commit resolves before its own: bounded so
one commit never pays for a backlog; their locks are resolved by readers anyway."""

LARGE_COMMIT_SWEEP = 50
"""Crashed large commits the AWS scheduler's per-minute sweep resolves: more
than commits crash in a minute, few enough to finish well within it."""

FILE_ORPHAN_SECONDS = 3600.0
"""A blob with no `_storage` document this long after it was written is an orphan
(a crash or timeout between the two writes) and the sweep removes it: a
document commits moments after its blob's last byte, so an hour is far past it."""

FILE_SWEEP_PAGE = 100
"""The orphan sweep looks up this many blobs' documents per read."""

# --- scheduled functions on AWS (runtime/aws/dispatch.py, scheduler.py) -------------

SQS_MAX_DELAY_SECONDS = 900
"""SQS delays a message at most 15 minutes (AWS's limit): a job due within it
is sent to JobsQueue with a delay, a later one gets a one-time EventBridge
Scheduler schedule."""

SQS_BATCH_MESSAGES = 10
"""SendMessageBatch and a Lambda SQS batch take at most 10 messages (AWS's
limit; template.yaml's BatchSize): the scheduler function runs a batch's
messages side by side, so one slow action does not hold up nine jobs."""

SCHEDULER_EARLY_SLEEP_SECONDS = 1.0
"""A message delivered this little before its job is due is held (a sleep)
rather than sent back: SQS and Scheduler round to whole seconds."""

SWEEP_GRACE_SECONDS = 60.0
"""The per-minute sweep re-sends queue records due longer ago than this:
dispatch missed them (a stream record given up on, a lost message) or an
action's lease ran out. Records due more recently are still in flight."""

SWEEP_RECORDS = 1000
"""Queue records the sweep re-sends per run (100 SendMessageBatch calls, a
few seconds); a larger backlog drains over the following minutes."""

# --- crons (runtime/functions/crons.py, runtime/scheduler/crons.py) ------------

CRON_JOBS_MAX = 1000
"""Crons per app. Each is a timer entry in the dev server and an EventBridge
Scheduler schedule on AWS (a quota of 1,000,000 per account, but every deploy
lists and compares them all): far past any real app, a typo guard."""

CRON_NAME_BYTES = 1000
"""A cron's name (UTF-8) is its state record's key (`("s:cron", name)`: DynamoDB sort
keys take 1 KiB) and goes into the AWS schedule's Description (512): the
schedule's own name is a hash of it, so the limit is the key's."""

CRON_LEASE_MARGIN_SECONDS = 60.0
"""An action cron's run holds its cron for the action timeout plus this
margin (`running_until`), past the longest a live run can take: a run whose
worker died blocks its cron no longer than that, and a live one is never
overlapped."""

# --- scheduled functions (runtime/functions/scheduler.py, runtime/scheduler/) -------

SCHEDULED_FUNCTIONS_PER_CALL = 1000
"""Functions one call may schedule (a mutation per attempt, an action over its
whole run): Convex's limit. Each is a document and a queue record in the
commit; past it, schedule one function that schedules the rest."""

SCHEDULED_ARGS_BYTES = 8 << 20
"""Arguments of all functions one call schedules, in bytes (Convex's 8 MiB):
they are written in the scheduling commit."""

JOB_QUEUE_SHARDS = 8
"""Partitions of the job queue (`s:jobq:<n>`): a burst of jobs spreads over
eight DynamoDB partitions instead of one hot one; the runner reads all eight."""

JOB_LEASE_MARGIN_SECONDS = 60.0
"""A running action's lease record is due at its start + ACTION_TIMEOUT_SECONDS
+ this margin: past it the action cannot still be running (it timed out), so
the job is marked failed when the record is reached."""

JOB_RETRY_SECONDS = 1.0
"""First delay before a job is tried again after a transient error (conflicts
exhausted, the store unavailable); it doubles each time up to JOB_RETRY_MAX_SECONDS.
A transient error never fails a job."""

JOB_RETRY_MAX_SECONDS = 300.0
"""The cap of that delay: a store down for long is retried every 5 minutes."""

SCHEDULED_RETENTION_SECONDS = 7 * 24 * 3600.0
"""Finished jobs (success, failed, canceled) are kept this long after they
completed (Convex keeps them 7 days), then trimmed."""

JOB_TRIM_INTERVAL_SECONDS = 3600.0
"""The dev server trims finished jobs at start and then hourly."""

JOB_TRIM_PAGE = 500
"""Jobs a trim looks at per transaction (a bounded page, well inside a mutation's
limits); the dev server's trim runs pages until done, AWS's sweep one per minute."""

JOB_DUE_PAGE = 256
"""Queue records the embedded timer takes per shard per wake-up; more due ones
are taken on the next wake-up, at once."""

JOB_IN_FLIGHT = 64
"""Queue records the dev server's timer has started and not yet finished (four per
pool worker, ACTION_WORKERS): a backlog of due jobs drains in these steps, and a
record in flight is never started twice."""

# --- full-text search (the seed's limits) -----------------------------------------

SEARCH_TERMS = 16
"""A search expression holds at most 16 terms (words after tokenizing; Convex's
limit): each term is one more posting list to merge and score. Search for the
few words that matter."""

SEARCH_FILTERS = 8
"""A search filter expression holds at most 8 equality filters (Convex's
limit); filter further with `.filter(...)` after the search."""

SEARCH_RESULTS = 1024
"""A search proposes, and `collect()` returns, at most 1,024 results (Convex's
limit: every result is re-read from the document store). Use `take(n)` or
`paginate` for more."""

SEARCH_FIELDS = 1
"""A search index has exactly one search field (Convex's limit): BM25 scores one
text; index several fields by writing their concatenation into one field."""

SEARCH_FILTER_FIELDS = 16
"""A search index has at most 16 filter fields (Convex's limit): each is one
more entry written per document."""

# --- full-text search on OpenSearch (the OpenSearch adapter) -----------------------

SEARCH_PREFIX_SCORED_TERMS = 64
"""A search's last term (a prefix) is scored by BM25 on the first 64 words it
expands to in OpenSearch (`top_terms_64`); documents matching only a later
expansion are still found, ranked after them. Lucene refuses a query of more
than 1,024 clauses, so scoring every expansion of a short prefix would fail."""

OPENSEARCH_BULK_ENTRIES = 500
"""Search entries per OpenSearch `_bulk` request: a few hundred small documents
keep one request well under OpenSearch's 10 MiB (smallest domain) request limit
and its bulk queue, while a stream batch still needs few round trips."""

# ---- Developer tools ------------------------------------------------------------

CALL_HISTORY_ENTRIES = 1000
"""Calls kept in memory for `GET /api/admin/logs` (the CLI's `logs`, the
dashboard's live log): enough to scroll back through a burst, a few MB at most."""

CALL_HISTORY_WAIT_SECONDS = 25.0
"""The longest a `/api/admin/logs?wait=` long-poll holds a request: under
API Gateway's 29 s integration timeout."""

CALL_HISTORY_DEFAULT = 100
"""The calls `/api/admin/logs` returns when asked for none after a position."""

# ---- The dev server's HTTP path (runtime/http/inline.py) ---------------------------

INLINE_CALL_SECONDS = 0.002
"""A query or mutation whose runs take under 2 ms of CPU runs on the dev
server's event loop, not a worker thread (the hop costs ~0.2 ms of CPU, more
than many a mutation). Holding the loop 2 ms delays other requests less than
the GIL already may (its switch interval is 5 ms); a typical mutation takes
0.2-1 ms."""

INLINE_WALL_SECONDS = 0.02
"""...and, run on the loop, under 20 ms of wall time: 2 ms of work plus
waiting for the GIL (other threads hold it up to 5 ms at a time); a run
sleeping or reading longer than that goes back to the workers."""

INLINE_AFTER_SHORT_RUNS = 8
"""...after its last 8 runs in a row were that short: a new or reloaded
function starts in a worker, and one whose runs are sometimes long holds the
loop at most once per 8 short runs before it goes back to the workers."""
