"""Certificates made by the test run (openssl CLI): a throwaway CA and a server certificate
it signs, valid for 127.0.0.1 and localhost, for TLS redis-servers and sentinels."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "2"
KEY = "rsa:2048"


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    def server_args(self) -> list[str]:
        """redis-server arguments of a TLS listener that does not ask clients for a
        certificate."""
        return [
            "--tls-cert-file",
            str(self.cert),
            "--tls-key-file",
            str(self.key),
            "--tls-ca-cert-file",
            str(self.ca),
            "--tls-auth-clients",
            "no",
        ]

    def client_options(self) -> dict[str, object]:
        """redis-py options of a client that verifies the server with the CA."""
        return {"ssl": True, "ssl_ca_certs": str(self.ca)}


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", KEY, "-nodes", "-days", DAYS,
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=tales-api test CA",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", KEY, "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1",
        cwd=directory,
    )  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", DAYS, "-extfile", "san.ext", "-out", "server.pem",
        cwd=directory,
    )  # fmt: skip
    return TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
