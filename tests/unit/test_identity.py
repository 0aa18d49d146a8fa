"""The run id read from an `INFO server` reply (app/cache/identity.py)."""

import pytest

from app.cache.identity import RedisIdentityError, run_id_of


def test_the_run_id_is_read_from_info_server() -> None:
    info = b"# Server\r\nredis_version:7.0.15\r\nrun_id:0e12523770\r\ntcp_port:6379\r\n"
    assert run_id_of(info) == "0e12523770"


def test_a_reply_without_a_run_id_is_refused() -> None:
    with pytest.raises(RedisIdentityError):
        run_id_of(b"# Server\r\nredis_version:7.0.15\r\n")
