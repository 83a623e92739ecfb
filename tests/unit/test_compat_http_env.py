"""The built-in URL variables (CONVEX_CLOUD_URL, CONVEX_SITE_URL) in
runtime/functions/environment.py, on a real SQLite store: given by the
shell, or recorded by a deploy and read by every process; never a user's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.aws.settings import deployment_urls, record_deployment_urls
from runtime.functions.environment import Environment, EnvVarError
from runtime.local.dev import dev_urls
from runtime.store.sqlite import SqliteStore

NAMES = ("CONVEX_CLOUD_URL", "CONVEX_SITE_URL")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    saved = {n: os.environ.pop(n, None) for n in NAMES}
    s = SqliteStore(str(tmp_path / "db.sqlite3"))
    yield s
    s.close()
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


def test_a_shell_that_knows_its_urls_sets_them(store: SqliteStore) -> None:
    env = Environment(store, system=dev_urls("127.0.0.1", 3210, 3211))
    env.apply()
    assert os.environ["CONVEX_CLOUD_URL"] == "http://127.0.0.1:3210"
    assert os.environ["CONVEX_SITE_URL"] == "http://127.0.0.1:3211"
    env.update({"MY_KEY": "x"})  # applying user variables keeps the built-in ones
    assert os.environ["CONVEX_CLOUD_URL"] == "http://127.0.0.1:3210"
    assert env.list() == {"MY_KEY": "x"}
    env.withdraw()
    assert not any(n in os.environ for n in NAMES)


def test_urls_a_deploy_recorded_reach_every_process_that_reads_the_store(
    store: SqliteStore,
) -> None:
    lambda_env = Environment(store)  # a container started before the deploy step
    lambda_env.apply()
    assert "CONVEX_CLOUD_URL" not in os.environ
    record_deployment_urls(store, "https://d123.cloudfront.net/")
    lambda_env.refresh(0)
    want = {n: "https://d123.cloudfront.net" for n in NAMES}
    assert (
        {n: os.environ[n] for n in NAMES} == want == deployment_urls("https://d123.cloudfront.net")
    )
    assert lambda_env.system == want
    assert lambda_env.list() == {}  # not listed as the app's variables
    fresh = Environment(store)
    fresh.apply()
    assert fresh.system == want


@pytest.mark.parametrize("name", NAMES)
def test_users_cannot_set_or_remove_the_built_in_names(store: SqliteStore, name: str) -> None:
    env = Environment(store)
    for value in ("https://elsewhere.example", None):
        with pytest.raises(EnvVarError, match="is built-in and cannot be overridden"):
            env.update({name: value})
    with pytest.raises(EnvVarError, match="not a built-in variable"):
        env.record_system({"CONVEX_OTHER": "x"})
