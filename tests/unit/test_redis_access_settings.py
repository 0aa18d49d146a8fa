"""The Redis access settings are validated at start, with the variable named."""

from pathlib import Path

import pytest

from app.cache.connection import secrets_of
from app.core.settings import SettingsError
from app.main import load_settings


def settings(**values: object) -> object:
    return load_settings(_env_file=None, **values)


def test_a_tls_ca_file_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="REDIS_TLS_CA_FILE"):
        settings(redis_url="rediss://127.0.0.1:6380/0", redis_tls_ca_file=tmp_path / "none.pem")


def test_a_tls_ca_file_needs_a_rediss_url(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    with pytest.raises(SettingsError, match=r"REDIS_TLS_CA_FILE.*rediss://"):
        settings(redis_url="redis://127.0.0.1:6379/0", redis_tls_ca_file=ca)
    accepted = settings(redis_url="rediss://127.0.0.1:6380/0", redis_tls_ca_file=ca)
    assert getattr(accepted, "redis_tls_ca_file", None) == ca


def test_the_sentinel_password_is_scrubbed_from_logs_like_the_others() -> None:
    loaded = load_settings(
        _env_file=None,
        redis_mode="sentinel",
        redis_sentinels="127.0.0.1:26379",
        redis_sentinel_master="tales",
        redis_sentinel_password="sentinel-secret",
        redis_url="redis://user:url-secret@unused/0",
    )
    assert set(secrets_of(loaded)) == {"sentinel-secret", "url-secret"}
