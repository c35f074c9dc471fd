"""Unit tests of Redis Sentinel URLs (`sentinel://...;sentinel://.../db`, kombu's format) in
HERALD_REDIS_URL and HERALD_LIMITS_REDIS_URL: read as Celery reads them, refused when Celery
would silently ignore a part, and turned into clients of the master the sentinels name."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from redis.sentinel import SentinelConnectionPool

from tests.support import SettingsEnv
from worker.redis_client import redis_answers, redis_from_url
from worker.redis_urls import is_sentinel_url, sentinel_addresses
from worker.settings import Settings

THREE = "sentinel://10.0.0.1:26379/2;sentinel://10.0.0.2:26380/2;sentinel://s3.example/2"


@pytest.fixture
def test_every_sentinel_is_read_with_the_database_of_the_first_address() -> None:
    addresses = sentinel_addresses(THREE)

    assert addresses.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("s3.example", 26379)]
    assert addresses.db == 2
    assert (addresses.username, addresses.password) == (None, None)


def test_later_addresses_may_leave_the_database_and_password_to_the_first() -> None:
    addresses = sentinel_addresses("sentinel://:p%40ss@a:1/3;sentinel://b:2")

    assert addresses.sentinels == [("a", 1), ("b", 2)]
    assert (addresses.db, addresses.password) == (3, "p@ss")
    assert "p@ss" not in repr(addresses)


@pytest.mark.parametrize(
    "url",
    [
        "sentinel://a:1;sentinel://b:2/3",  # Celery would use database 0, not 3
        "sentinel://:one@a:1/0;sentinel://:two@b:2/0",
        "sentinel://a:1/0;redis://b:2/0",
        "sentinel://a:port/0",
        "sentinel://a:1/zero",
        "sentinel://a:1/0?master=x",
    ],
)
def test_a_url_celery_would_read_otherwise_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        sentinel_addresses(url)


def test_the_settings_refuse_a_bad_sentinel_url_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HERALD_LIMITS_REDIS_URL", "sentinel://:secret-pw@a:1/0;sentinel://b:2/5")

    with pytest.raises(ValidationError, match="HERALD_LIMITS_REDIS_URL") as refused:
        Settings()
    assert "secret-pw" not in str(refused.value)


def test_a_plain_redis_url_is_not_a_sentinel_one() -> None:
    assert not is_sentinel_url("redis://127.0.0.1:6379/0")
    assert is_sentinel_url(THREE)


def test_the_client_asks_the_sentinels_for_the_named_master(settings_env: SettingsEnv) -> None:
    settings_env.setenv("HERALD_REDIS_SENTINEL_MASTER", "herald-master")

    client = redis_from_url("sentinel://:pw@10.0.0.1:26379/4;sentinel://10.0.0.2:26379")

    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "herald-master"
    assert pool.connection_kwargs["db"] == 4
    assert pool.connection_kwargs["password"] == "pw"
    hosts = [s.connection_pool.connection_kwargs["host"] for s in pool.sentinel_manager.sentinels]
    assert hosts == ["10.0.0.1", "10.0.0.2"]


def test_no_answer_from_the_sentinels_is_no_redis(settings_env: SettingsEnv) -> None:
    assert not redis_answers("sentinel://127.0.0.1:9/0", connect_timeout_s=0.2)


def test_celery_is_given_the_master_name_for_a_sentinel_broker(settings_env: SettingsEnv) -> None:
    from worker.app import make_celery

    settings_env.setenv("HERALD_REDIS_URL", "sentinel://127.0.0.1:26379/0")
    settings_env.setenv("HERALD_REDIS_SENTINEL_MASTER", "herald-master")

    celery = make_celery()

    assert celery.conf.broker_url.startswith("sentinel://")
    assert celery.conf.broker_transport_options["master_name"] == "herald-master"
    assert celery.conf.result_backend_transport_options["master_name"] == "herald-master"


def test_herald_up_starts_no_private_redis_for_sentinels_that_do_not_answer(
    settings_env: SettingsEnv, tmp_path: Path
) -> None:
    from worker.up import LocalSystem, ensure_redis

    settings_env.setenv("HERALD_REDIS_SENTINEL_MASTER", "herald-master")
    settings = Settings(data_dir=tmp_path, redis_url="sentinel://127.0.0.1:9/0")
    system = LocalSystem(settings, lambda _line: None)

    with pytest.raises(SystemExit, match="herald-master"):
        ensure_redis(system)
    assert system.children == []
