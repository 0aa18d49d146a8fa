"""Fixtures of the TLS and ACL tests: certificates made for the run, and a TLS-only
redis-server of the test's own (its default user has a password: the test makes the ACL
user)."""

from collections.abc import Iterator

import pytest

from tests.support.redis_sentinel import NodeServer
from tests.support.tls import TlsFiles, make_certificates

ADMIN_PASSWORD = "admin-password-for-tests"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_redis(tls_files: TlsFiles) -> Iterator[NodeServer]:
    with NodeServer(ADMIN_PASSWORD, tls=tls_files) as server:
        yield server
