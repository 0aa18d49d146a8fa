"""The image's commands, run outside Docker (no engine here): the Dockerfile is read, its
builder stage's COPY/ENV/WORKDIR/RUN run in a temporary /app, its runtime stage's COPY and
RUN in another, then its ENTRYPOINT runs the `migrate` command and the default CMD against
the test PostgreSQL and a throwaway redis-server, with the secrets in files.

What cannot run here, and is therefore skipped by name (the test fails if the Dockerfile
changes around them): copying uv from its image (the machine's uv runs instead), the
runtime's apt-get/useradd step (it would change this machine), tini as PID 1, `USER`. HOST
is 127.0.0.1 instead of the image's 0.0.0.0, so nothing listens on this machine's network.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.api.tokens import mint
from tests.deploy.conftest import ROOT, Started, base_env
from tests.deploy.test_access_log import NAME_FORMS, exercise
from tests.support.redis_server import RedisServer

DOCKERFILE = ROOT / "Dockerfile"
IMAGE_APP = "/app"
BUILD_TIMEOUT = 600
RUN_TIMEOUT = 120
AWKWARD_PASSWORD = "p@ss:w/rd#?%&="
JWT_SECRET = "an-hs256-key-from-a-secret-file-0123456789"
JWT_ISSUER, JWT_AUDIENCE = "image-test-issuer", "tales-api"
#: the runtime stage's files under /app, and nothing else (no tests, bench, Makefile...)
RUNTIME_FILES = {".venv", "alembic", "alembic.ini", "scripts"}
NOT_RUN_HERE = ("apt-get install -y --no-install-recommends tini", "useradd --system")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    result: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    return result


def stages(text: str) -> dict[str, list[Instruction]]:
    found: dict[str, list[Instruction]] = {}
    current: list[Instruction] | None = None
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            name = instruction.args.split(" AS ")[-1].strip()
            current = found.setdefault(name, [])
        elif current is not None:
            current.append(instruction)
    return found


class Stage:
    """Runs one stage's instructions with /app mapped to `root / "app"`."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = dict(env)
        self.cwd = root
        self.skipped: list[str] = []
        self.entrypoint: list[str] = []
        self.cmd: list[str] = []

    def path(self, image_path: str) -> Path:
        if image_path.startswith("/"):
            return self.root / image_path.lstrip("/")
        return self.cwd / image_path

    def expand(self, value: str) -> str:
        value = value.replace(IMAGE_APP, str(self.root / "app"))
        return re.sub(r"\$\{(\w+)\}", lambda m: self.env.get(m.group(1), ""), value)

    def run(self, instruction: Instruction, builder: Stage | None) -> None:
        handler = getattr(self, f"do_{instruction.keyword.lower()}", None)
        if handler is None:
            self.skipped.append(f"{instruction.keyword} {instruction.args}")
            return
        handler(instruction.args, builder)

    def do_env(self, args: str, builder: Stage | None) -> None:
        for pair in shlex.split(args):
            name, _, value = pair.partition("=")
            self.env[name] = self.expand(value)

    def do_workdir(self, args: str, builder: Stage | None) -> None:
        self.cwd = self.path(args)
        self.cwd.mkdir(parents=True, exist_ok=True)

    def do_copy(self, args: str, builder: Stage | None) -> None:
        words = shlex.split(args)
        flags = {w.split("=", 1)[0]: w.split("=", 1)[1] for w in words if w.startswith("--")}
        *sources, target = [w for w in words if not w.startswith("--")]
        origin = flags.get("--from")
        if origin == "uv":
            self.skipped.append(f"COPY {args}")  # the machine's uv stands in
            return
        for source in sources:
            if origin == "builder":
                assert builder is not None
                src = builder.path(source)
            else:
                assert allowed_in_context(source), f"{source} is excluded by .dockerignore"
                src = ROOT / source
            dest = self.path(target)
            if target.endswith("/"):
                dest = dest / src.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                # .dockerignore leaves the context's __pycache__ out, not the builder's
                ignore = None if origin else shutil.ignore_patterns("__pycache__")
                shutil.copytree(src, dest, symlinks=True, ignore=ignore)
            else:
                shutil.copy2(src, dest)
            if "--chmod" in flags:
                dest.chmod(int(flags["--chmod"], 8))

    def do_run(self, args: str, builder: Stage | None) -> None:
        if any(marker in args for marker in NOT_RUN_HERE):
            self.skipped.append(f"RUN {args}")
            return
        words = args.split(" ")
        mounts = [w for w in words if w.startswith("--mount=")]
        command = " ".join(w for w in words if not w.startswith("--mount=")).strip()
        bound: list[Path] = []
        for mount in mounts:
            options = dict(o.split("=", 1) for o in mount.removeprefix("--mount=").split(","))
            if options["type"] == "bind":
                target = self.path(options["target"])
                shutil.copy2(ROOT / options["source"], target)
                bound.append(target)
        try:
            run = subprocess.run(
                ["sh", "-c", self.expand(command)],
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        finally:
            for target in bound:
                target.unlink()
        assert run.returncode == 0, f"RUN {command}:\n{run.stdout}\n{run.stderr}"

    def do_entrypoint(self, args: str, builder: Stage | None) -> None:
        self.entrypoint = json.loads(args)

    def do_cmd(self, args: str, builder: Stage | None) -> None:
        self.cmd = json.loads(args)


def allowed_in_context(source: str) -> bool:
    """.dockerignore is an allow-list (`*`, then `!path` lines)."""
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    return source.rstrip("/") in allowed


def uv_installed_by_make() -> str | None:
    """`make uv` pip-installs uv for python3 when none is on PATH: its binary's path."""
    found = subprocess.run(
        ["python3", "-c", "import uv; print(uv.find_uv_bin())"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return found.stdout.strip() or None


def machine_env() -> dict[str, str]:
    """What the image's base provides, from this machine: its PATH (with uv on it) and the
    Python the venv is built on (the image has one Python; this machine may have several)."""
    uv = shutil.which("uv") or uv_installed_by_make()
    assert uv, "uv is needed: on PATH, or pip-installed for python3 (`make uv`)"
    base_python = Path(sys.base_prefix) / "bin" / "python3"
    return {
        "PATH": f"{Path(uv).parent}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/root"),
        "UV_PYTHON": str(base_python),
        "UV_NO_PROGRESS": "1",
    }


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Stage:
    """The builder stage then the runtime stage, run; the runtime stage returned."""
    root = tmp_path_factory.mktemp("image")
    found = stages(DOCKERFILE.read_text())
    assert set(found) == {"uv", "builder", "runtime"}
    builder = Stage(root / "builder", machine_env())
    for instruction in found["builder"]:
        builder.run(instruction, None)
    runtime = Stage(root / "runtime", machine_env())
    for instruction in found["runtime"]:
        runtime.run(instruction, builder)
    assert builder.skipped == ["COPY --from=uv /uv /uvx /bin/"]
    assert [s.split(" ")[0] for s in runtime.skipped] == [
        "RUN",
        "USER",
        "EXPOSE",
        "STOPSIGNAL",
        "HEALTHCHECK",
    ]
    return runtime


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT + 300)
def test_the_image_holds_only_runtime_files_and_a_byte_compiled_packaged_app(
    image: Stage,
) -> None:
    app_dir = image.root / "app"
    assert {p.name for p in app_dir.iterdir()} == RUNTIME_FILES
    assert [p.name for p in (app_dir / "scripts").iterdir()] == ["docker-entrypoint.sh"]
    site = next((app_dir / ".venv" / "lib").glob("python3.*/site-packages"))
    package = site / "app"
    assert (package / "main.py").is_file(), "the app is not installed in the venv"
    compiled = {p.name.split(".")[0] for p in (package / "__pycache__").glob("*.pyc")}
    assert {"main", "serve", "migrate"} <= compiled, "the app is not byte-compiled"
    assert list((app_dir / "alembic" / "__pycache__").glob("env.*.pyc"))
    editable = [p for p in site.glob("*.pth") if str(ROOT) in p.read_text()]
    assert editable == [], "the app is installed editable (a link to the source)"
    dev_only = {"pytest", "mypy", "ruff", "httpx"}
    assert not {p.name for p in site.iterdir()} & dev_only, "dev dependencies in the image"


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT + 300)
def test_the_entrypoint_migrates_then_serves_with_secrets_from_files(
    image: Stage,
    fresh_database_url: str,
    redis_server: RedisServer,
    started: list[Started],
    tmp_path: Path,
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "database_password").write_text(AWKWARD_PASSWORD + "\n")
    (secrets / "cache_key_salt").write_text("a-salt-from-a-file\n")
    (secrets / "auth_jwt_secret").write_text(JWT_SECRET + "\n")
    url = make_url(fresh_database_url)
    env = {
        **image.env,
        **base_env(),
        "PATH": image.env["PATH"],  # the image's venv first
        "HOST": "127.0.0.1",
        "DATABASE_HOST": str(url.host),
        "DATABASE_PORT": str(url.port),
        "DATABASE_USER": str(url.username),
        "DATABASE_NAME": str(url.database),
        "REDIS_URL": redis_server.url,
        "SECRETS_DIR": str(secrets),
        "ACCESS_LOG": "true",
        "AUTH_ISSUER": JWT_ISSUER,
        "AUTH_AUDIENCE": JWT_AUDIENCE,
    }
    assert image.env["APP_ENV"] == "production"
    assert image.env["AUTH_ENABLED"] == "true"
    tini, separator, script = image.entrypoint
    assert (tini, separator) == ("/usr/bin/tini", "--")
    entrypoint = ["sh", image.expand(script)]

    migrate = subprocess.run(
        [*entrypoint, "migrate"],
        cwd=image.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "migrate: database at head" in migrate.stderr

    service = Started([*entrypoint, *image.cmd], env, tmp_path / "service.log", cwd=image.cwd)
    started.append(service)
    service.wait_healthy()
    ready = httpx.get(f"{service.url}/health/ready", timeout=10.0)
    assert ready.status_code == 200, ready.text
    assert ready.json()["auth"] == "enabled"
    assert httpx.get(f"{service.url}/api/v1/heroes", timeout=10.0).status_code == 401
    token = mint(
        JWT_SECRET,
        issuer=JWT_ISSUER,
        audience=JWT_AUDIENCE,
        scopes=["tales.read", "tales.write"],
        subject="image-test",
        ttl_s=600,
    )
    exercise(service.url, {"Authorization": f"Bearer {token}"})
    httpx.get(f"{service.url}/health", timeout=5.0)
    assert service.stop() == 0, service.output()

    output = service.output()
    assert "Shutting down" in output
    assert '"POST /api/v1/children HTTP/1.1" 201' in output
    for form in NAME_FORMS:
        assert form.lower() not in output.lower(), output
    assert AWKWARD_PASSWORD not in output
