"""functions/crons.py loads with the functions (runtime/functions/registry.py):
each job's function is checked to exist and be a mutation or an action; a
bad crons.py is refused on reload with a clear message naming the file and
the previous functions and crons stay in force."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.backend import Backend
from runtime.functions import load_functions
from runtime.functions.crons import Interval
from runtime.store.sqlite import SqliteStore

FUNCTIONS = """\
from runtime import action, internal_mutation, mutation, query, v

@internal_mutation(args={})
def tick(ctx, args):
    return None

@mutation(args={"n": v.number()})
def bump(ctx, args):
    return None

@action(args={})
def ping(ctx, args):
    return None

@query(args={})
def read(ctx, args):
    return None
"""

GOOD = """\
from runtime import cron_jobs
from .jobs import ping

crons = cron_jobs()
crons.interval("tick", {"seconds": 5}, "jobs:tick")
crons.daily("bump", {"hourUTC": 1, "minuteUTC": 0}, "jobs:bump", {"n": 1})
crons.cron("ping", "*/5 * * * *", ping)
"""


def _folder(tmp_path: Path, crons: str | None = GOOD) -> Path:
    (tmp_path / "jobs.py").write_text(FUNCTIONS)
    if crons is not None:
        (tmp_path / "crons.py").write_text(crons)
    return tmp_path


def test_crons_load_with_their_function_paths(tmp_path: Path) -> None:
    registry = load_functions(_folder(tmp_path))
    assert [(j.name, j.path) for j in registry.crons] == [
        ("tick", "jobs:tick"),
        ("bump", "jobs:bump"),
        ("ping", "jobs:ping"),
    ]
    assert registry.crons[0].schedule == Interval(5000)
    assert registry.crons[1].args == {"n": 1}


def test_no_crons_file_no_crons(tmp_path: Path) -> None:
    assert load_functions(_folder(tmp_path, None)).crons == []


def test_the_only_cron_jobs_of_the_module_under_another_name(tmp_path: Path) -> None:
    text = GOOD.replace("crons = cron_jobs()", "jobs = cron_jobs()").replace("crons.", "jobs.")
    registry = load_functions(_folder(tmp_path, text))
    assert [j.name for j in registry.crons] == ["tick", "bump", "ping"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (GOOD.replace('"jobs:tick"', '"jobs:nope"'), "cron 'tick': no function 'jobs:nope'"),
        (
            GOOD.replace('"jobs:tick"', '"jobs:read"'),
            "jobs:read is a query; a cron runs a mutation or an action",
        ),
        (
            GOOD.replace('"bump", {"hourUTC": 1', '"tick", {"hourUTC": 1'),
            "cron 'tick' is registered twice",
        ),
        (GOOD.replace('{"seconds": 5}', '{"seconds": 0}'), "must be a number > 0"),
        (GOOD.replace('"*/5 * * * *"', '"*/5 * * *"'), "has 4 fields; write five"),
        (
            "from runtime import cron_jobs\na = cron_jobs()\nb = cron_jobs()\n",
            "define `crons = cron_jobs()`",
        ),
        ("crons = 5\n", "define `crons = cron_jobs()`"),
        (GOOD + "crons.interval(\n", "SyntaxError"),
    ],
)
def test_a_bad_crons_file_is_refused_and_the_previous_crons_stay(
    tmp_path: Path, text: str, said: str
) -> None:
    backend = Backend(SqliteStore(":memory:"), _folder(tmp_path), admin_key=None)
    assert backend.reload().ok
    (tmp_path / "crons.py").write_text(text)
    report = backend.reload()
    assert not report.ok
    assert "crons.py" in report.message and said in report.message, report.message
    assert [j.name for j in backend.registry.crons] == ["tick", "bump", "ping"]
    assert backend.registry.get("jobs:tick") is not None


def test_a_function_object_not_exported_under_functions_is_refused(tmp_path: Path) -> None:
    text = GOOD + (
        "from runtime import internal_mutation\n"
        "crons.interval('local', {'minutes': 1}, internal_mutation(lambda ctx, args: None))\n"
    )
    # the lambda's definition is a module attribute nowhere: no path to run it by
    with pytest.raises(Exception, match="cron 'local': its function object is not exported"):
        load_functions(_folder(tmp_path, text))
