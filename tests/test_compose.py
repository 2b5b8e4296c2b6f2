"""Consistency of the deployment files: docker-compose.yml, the Dockerfile and the database init scripts.

These tests need no Docker engine; they read the files and check that they agree with each other and with the
repository (commands name modules that exist, every database URL points at the compose database, ...), and run
`docker-compose config` (Debian's docker-compose) to see the file as compose resolves it: it passes with the
deployment's environment set and refuses to run without any one of its secrets.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"

API_PORTS = {
    "registry_api": 8001,
    "geo_query": 8002,
    "requests_api": 8003,
    "community_api": 8004,
    "live_relay": 8005,
}
WORKER = "requests_worker"
APP_SERVICES = {"migrate", WORKER, *API_PORTS}
REQUIRED_SECRETS = (
    "CANVASS_SECRET_KEY",
    "CANVASS_ENCRYPTION_KEY",
    "CANVASS_KEYSTORE_KEY",
    "CANVASS_PUBLIC_BASE_URL",
)
DB_PASSWORDS = ("CANVASS_DB_PASSWORD", "CANVASS_SVC_DB_PASSWORD", "CANVASS_GEO_DB_PASSWORD")
KEYSTORE_PASSWORD = "CANVASS_KEYSTORE_DB_PASSWORD"
DEPLOY_ENV = {
    "CANVASS_SECRET_KEY": "k" * 40,
    "CANVASS_ENCRYPTION_KEY": "v1:" + "A" * 43 + "=",
    "CANVASS_KEYSTORE_KEY": "w1:" + "B" * 43 + "=",
    KEYSTORE_PASSWORD: "keys-pw-4",
    "CANVASS_DB_PASSWORD": "owner-pw-1",
    "CANVASS_SVC_DB_PASSWORD": "svc-pw-2",
    "CANVASS_GEO_DB_PASSWORD": "geo-pw-3",
    "CANVASS_PUBLIC_BASE_URL": "https://canvass.example",
}
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
EVIDENCE_DIR = "/var/lib/canvass/evidence"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "compose file has no services"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` on the project's file with exactly `env` (and PATH) in its environment."""
    return subprocess.run(
        ["docker-compose", "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "config"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    """The services as compose resolves them with the deployment's environment set."""
    result = compose_config(DEPLOY_ENV)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]  # type: ignore[no-any-return]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whichever of the two compose spellings it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command_args(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    assert command, "service has no command"
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """depends_on as {target: condition}; the short list form means service_started."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def module_file(module: str) -> list[Path]:
    """Files that could provide a dotted module path (a module, or a package run with -m)."""
    base = ROOT.joinpath(*module.split("."))
    return [base.with_suffix(".py"), base / "__main__.py", base / "__init__.py"]


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


def published_ports(service: dict[str, Any]) -> set[tuple[int, int]]:
    """(host, container) pairs from the short "host:container" or long {published, target} port syntax."""
    pairs = set()
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            pairs.add((int(port["published"]), int(port["target"])))
        else:
            *_, host, container = str(port).split(":")
            pairs.add((int(host), int(container.split("/")[0])))
    return pairs


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)  # join continuation lines
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_compose_defines_the_database_migration_and_services(services: dict[str, Any]) -> None:
    assert set(services) == {"db", "keystore", *APP_SERVICES}


def test_every_service_has_an_image_or_a_build(services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert service.get("image") or service.get("build"), f"{name} has neither image nor build"


def test_database_service_uses_the_postgis_image(services: dict[str, Any]) -> None:
    assert services["db"]["image"] == "postgis/postgis:15-3.4"
    env = environment(services["db"])
    assert env["POSTGRES_USER"] == env["POSTGRES_DB"] == "canvass"
    assert env["POSTGRES_PASSWORD"]


def test_every_build_names_a_dockerfile_that_exists(services: dict[str, Any]) -> None:
    builds = {name: s["build"] for name, s in services.items() if s.get("build")}
    assert builds, "no service is built from the project"
    for name, build in builds.items():
        context, dockerfile = (
            (build, "Dockerfile")
            if isinstance(build, str)
            else (
                build.get("context", "."),
                build.get("dockerfile", "Dockerfile"),
            )
        )
        assert (ROOT / context / dockerfile).is_file(), f"{name}: {context}/{dockerfile} does not exist"


def test_app_services_are_built_from_the_project_dockerfile(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        assert services[name].get("build"), f"{name} is not built from the project"


def test_uvicorn_commands_name_app_modules_that_exist(services: dict[str, Any]) -> None:
    for name, port in API_PORTS.items():
        args = command_args(services[name])
        assert args[0] == "uvicorn", f"{name} does not run uvicorn"
        target = args[1]
        module, _, attribute = target.partition(":")
        assert module == f"services.{name}.main" and attribute == "app", f"{name} runs {target}"
        assert any(path.is_file() for path in module_file(module)), f"{name}: no file for module {module}"
        assert args[args.index("--port") + 1] == str(port), f"{name} listens on the wrong port"
        # other containers must reach it, so it binds every interface of its own
        assert args[args.index("--host") + 1] == "0.0.0.0", name  # noqa: S104


def test_migrate_runs_alembic_to_head_once(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert command_args(migrate) == ["alembic", "upgrade", "head"]
    assert (ROOT / "alembic.ini").is_file()
    # quoted in YAML: a bare `no` would load as False
    assert migrate.get("restart") == "no"


def test_depends_on_targets_exist_and_use_valid_conditions(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert target != name, f"{name} depends on itself"
            assert condition in DEPENDS_ON_CONDITIONS, f"{name} -> {target}: bad condition {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target}, which has no healthcheck"
                )
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} must run once to complete"


def test_startup_order_is_db_then_migrate_then_services(services: dict[str, Any]) -> None:
    assert depends_on(services["migrate"]) == {"db": "service_healthy", "keystore": "service_healthy"}
    for name in APP_SERVICES - {"migrate"}:
        assert depends_on(services[name]).get("migrate") == "service_completed_successfully", name
        assert depends_on(services[name]).get("keystore") == "service_healthy", name
    assert depends_on(services["requests_api"]).get("geo_query") == "service_healthy"


def test_api_ports_are_published_by_the_right_services(services: dict[str, Any]) -> None:
    owners: dict[int, str] = {}
    for name, service in services.items():
        for host, container in published_ports(service):
            assert host not in owners, f"port {host} published by {owners[host]} and {name}"
            owners[host] = name
            assert host == container, f"{name} maps {host} to {container}"
    assert owners == {port: name for name, port in API_PORTS.items()}


def test_every_database_url_points_at_the_db_service(rendered: dict[str, Any]) -> None:
    services = rendered
    db_env = environment(services["db"])
    seen = 0
    for name, service in services.items():
        for key, value in environment(service).items():
            if not key.endswith("DATABASE_URL"):
                continue
            seen += 1
            url = urlsplit(value)
            assert url.scheme.startswith("postgresql"), f"{name}.{key} is not a PostgreSQL URL"
            assert url.hostname == "db", f"{name}.{key} points at {url.hostname}, not the db service"
            assert url.port in (None, 5432), f"{name}.{key} uses port {url.port}"
            assert url.path == "/" + db_env["POSTGRES_DB"], f"{name}.{key} names another database"
    assert seen >= len(APP_SERVICES)


def test_migrations_run_as_the_owner_and_services_as_the_runtime_role(rendered: dict[str, Any]) -> None:
    db_env = environment(rendered["db"])
    assert db_env["POSTGRES_PASSWORD"] == DEPLOY_ENV["CANVASS_DB_PASSWORD"]
    owner = f"postgresql://{db_env['POSTGRES_USER']}:{db_env['POSTGRES_PASSWORD']}@db:5432/{db_env['POSTGRES_DB']}"
    sql = (ROOT / "deploy/initdb/10-roles.sql").read_text()
    for name in APP_SERVICES:
        env = environment(rendered[name])
        assert env.get("MIGRATIONS_DATABASE_URL") == owner, name
        runtime = urlsplit(env["DATABASE_URL"])
        assert runtime.username == "canvass_svc", f"{name} must not connect as the owner"
        assert runtime.password == DEPLOY_ENV["CANVASS_SVC_DB_PASSWORD"], name
    assert re.search(r"CREATE ROLE canvass_svc LOGIN IN ROLE canvass_app", sql)
    assert db_env["CANVASS_SVC_DB_PASSWORD"] == DEPLOY_ENV["CANVASS_SVC_DB_PASSWORD"]


def test_geo_query_reads_with_the_role_the_init_script_creates(rendered: dict[str, Any]) -> None:
    url = urlsplit(environment(rendered["geo_query"])["GEO_QUERY_DATABASE_URL"])
    assert url.username == "canvass_geo" and url.password == DEPLOY_ENV["CANVASS_GEO_DB_PASSWORD"]
    assert environment(rendered["db"])["CANVASS_GEO_DB_PASSWORD"] == url.password
    sql = (ROOT / "deploy/initdb/10-roles.sql").read_text()
    assert re.search(r"CREATE ROLE canvass_geo LOGIN IN ROLE canvass_read", sql)


def test_no_password_is_written_in_the_deployment_files(services: dict[str, Any]) -> None:
    """The database passwords come from the environment: the init SQL creates the roles without one and the
    init script sets them from variables; every URL and POSTGRES_PASSWORD refers to a required variable."""
    sql = (ROOT / "deploy/initdb/10-roles.sql").read_text()
    statements = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    assert "PASSWORD" not in statements.upper()
    script = (ROOT / "deploy/initdb/20-role-passwords.sh").read_text()
    assert "ALTER ROLE canvass_svc PASSWORD :'svc_password'" in script
    assert "ALTER ROLE canvass_geo PASSWORD :'geo_password'" in script
    assert '-v svc_password="$CANVASS_SVC_DB_PASSWORD"' in script
    assert '-v geo_password="$CANVASS_GEO_DB_PASSWORD"' in script
    mounts = [str(v) for v in services["db"]["volumes"]]
    assert any(
        m.startswith("./deploy/initdb/20-role-passwords.sh:/docker-entrypoint-initdb.d/") for m in mounts
    )
    required = re.compile(r"\$\{(CANVASS_[A-Z_]*PASSWORD):\?[^}]+\}")
    db_env = environment(services["db"])
    assert required.fullmatch(db_env["POSTGRES_PASSWORD"])
    for name, service in services.items():
        for key, value in environment(service).items():
            if key.endswith("DATABASE_URL"):
                password = value.split("://", 1)[1].rsplit("@", 1)[0].split(":", 1)[1]
                assert required.fullmatch(password), f"{name}.{key} has a literal password"


def test_the_key_store_is_its_own_database_server_and_volume(
    rendered: dict[str, Any], compose: dict[str, Any]
) -> None:
    """The data keys that open what owners wrote are never in the main database's files or backups
    (shared/keystore.py): the key store is another server with its own volume, its password from the
    environment, and every app service is told where it is."""
    keystore = rendered["keystore"]
    env = environment(keystore)
    volumes = [str(v["source"] if isinstance(v, dict) else v).split(":", 1)[0] for v in keystore["volumes"]]
    assert volumes == ["keydata"] or volumes[0].endswith("_keydata"), volumes
    assert "keydata" in (compose.get("volumes") or {})
    assert env["POSTGRES_PASSWORD"] == DEPLOY_ENV[KEYSTORE_PASSWORD]
    for name in APP_SERVICES:
        url = urlsplit(environment(rendered[name])["CANVASS_KEYSTORE_URL"])
        assert (url.hostname, url.username, url.path) == (
            "keystore",
            env["POSTGRES_USER"],
            "/canvass_keys",
        ), name
        assert url.password == DEPLOY_ENV[KEYSTORE_PASSWORD], name


@pytest.mark.parametrize("missing", (*REQUIRED_SECRETS, *DB_PASSWORDS, KEYSTORE_PASSWORD))
def test_docker_compose_config_refuses_to_run_without_a_secret(missing: str) -> None:
    env = {k: v for k, v in DEPLOY_ENV.items() if k != missing}
    result = compose_config(env)
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr, result.stderr
    empty = compose_config({**DEPLOY_ENV, missing: ""})  # set but empty is refused too
    assert empty.returncode != 0 and f"set {missing}" in empty.stderr


def test_ports_are_published_on_localhost_unless_configured(rendered: dict[str, Any]) -> None:
    for name, port in API_PORTS.items():
        assert [str(p) for p in rendered[name]["ports"]] == [f"127.0.0.1:{port}:{port}/tcp"], name
    opened = compose_config({**DEPLOY_ENV, "CANVASS_BIND_ADDRESS": "0.0.0.0"})  # noqa: S104
    assert opened.returncode == 0, opened.stderr
    services = yaml.safe_load(opened.stdout)["services"]
    for name, port in API_PORTS.items():
        assert [str(p) for p in services[name]["ports"]] == [f"0.0.0.0:{port}:{port}/tcp"], name


def test_the_identity_providers_keys_are_set_from_the_environment(rendered: dict[str, Any]) -> None:
    idp = {
        "CANVASS_JWKS_URL": "https://idp.example/.well-known/jwks.json",
        "CANVASS_JWT_PUBLIC_KEYS": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----",
        "CANVASS_JWT_ISSUER": "https://idp.example/",
        "CANVASS_JWT_AUDIENCE": "canvass-prod",
    }
    result = compose_config({**DEPLOY_ENV, **idp})
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in APP_SERVICES:
        env = environment(services[name])
        assert {k: env.get(k) for k in idp} == idp, name
        # Unset, they are empty, which the settings take as not configured.
        assert environment(rendered[name])["CANVASS_JWKS_URL"] == "", name


def test_requests_api_and_its_worker_reach_geo_query_and_registry_api_over_http(
    services: dict[str, Any],
) -> None:
    for name in ("requests_api", WORKER):
        env = environment(services[name])
        for var, target in (("GEO_QUERY_URL", "geo_query"), ("REGISTRY_API_URL", "registry_api")):
            url = urlsplit(env[var])
            assert (url.scheme, url.hostname, url.port) == ("http", target, API_PORTS[target]), (name, var)
            assert depends_on(services[name]).get(target) == "service_healthy", (name, target)


def test_the_requests_worker_runs_its_module_and_publishes_no_port(services: dict[str, Any]) -> None:
    worker = services[WORKER]
    args = command_args(worker)
    assert args[:2] == ["python", "-m"], args
    assert any(path.is_file() for path in module_file(args[2])), f"no file for module {args[2]}"
    assert args[2] == "services.requests_api.worker"
    assert not worker.get("ports"), "the worker serves nothing and must publish no port"
    assert worker.get("build") == services["requests_api"].get("build")
    assert worker.get("image") == services["requests_api"].get("image")


def test_db_and_api_services_have_healthchecks(services: dict[str, Any]) -> None:
    assert "pg_isready" in healthcheck_text(services["db"])
    for name, port in API_PORTS.items():
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
        check = healthcheck_text(services[name])
        # Ready, not just alive: the database is reachable and migrated, so a dependant waits for a working API.
        assert f"http://127.0.0.1:{port}/readyz" in check, f"{name} healthcheck does not hit its /readyz"


def test_api_healthchecks_run_with_the_image_python(services: dict[str, Any]) -> None:
    for name in API_PORTS:
        test = services[name]["healthcheck"]["test"]
        assert isinstance(test, list) and test[:3] == ["CMD", "python", "-c"], name
        compile(test[3], f"{name} healthcheck", "exec")  # the one-liner is valid Python


def test_required_secrets_use_required_variable_syntax(services: dict[str, Any]) -> None:
    db_env = environment(services["db"])
    for secret in DB_PASSWORDS[1:]:
        assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", db_env.get(secret, "")), secret
    for name in APP_SERVICES:
        env = environment(services[name])
        assert env.get("CANVASS_ENV") == "production", name
        for secret in REQUIRED_SECRETS:
            assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", env.get(secret, "")), (
                f"{name}.{secret} must be ${{{secret}:?message}}, got {env.get(secret)!r}"
            )


def test_evidence_volume_is_shared_by_requests_api_and_its_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "evidence" in (compose.get("volumes") or {})
    for name in ("requests_api", WORKER):
        assert f"evidence:{EVIDENCE_DIR}" in services[name].get("volumes", []), name
        assert environment(services[name]).get("CANVASS_EVIDENCE_DIR") == EVIDENCE_DIR, name


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_initdb_script_mounted_into_db_exists_and_creates_roles(services: dict[str, Any]) -> None:
    mounts = [str(v).split(":") for v in services["db"].get("volumes") or []]
    init = [(src, dst) for src, dst, *_ in mounts if dst.startswith("/docker-entrypoint-initdb.d/")]
    assert init, "no init script mounted into /docker-entrypoint-initdb.d"
    assert any(dst == "/var/lib/postgresql/data" for _, dst, *_ in mounts), "database data is not on a volume"
    for source, _ in init:
        assert (ROOT / source).is_file(), f"{source} does not exist"
    sql_scripts = [source for source, _ in init if source.endswith(".sql")]
    assert sql_scripts, "no SQL init script"
    for source in sql_scripts:
        sql = (ROOT / source).read_text()
        assert "CREATE ROLE canvass_read NOLOGIN" in sql
        assert re.search(r"CREATE ROLE canvass_geo LOGIN IN ROLE canvass_read", sql)
        assert "CREATE EXTENSION IF NOT EXISTS postgis" in sql


def test_dockerfile_copies_files_that_exist() -> None:
    copies = [rest for keyword, rest in dockerfile_instructions() if keyword == "COPY"]
    assert copies
    sources = [src for rest in copies for src in rest.split()[:-1] if not src.startswith("--")]
    for wanted in ("pyproject.toml", "uv.lock", "shared", "services", "migrations", "alembic.ini", "openapi"):
        assert wanted in sources, f"Dockerfile does not copy {wanted}"
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_dockerfile_runs_as_non_root_and_exposes_api_ports() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim-bookworm")
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    exposed = {int(p) for keyword, rest in instructions if keyword == "EXPOSE" for p in rest.split()}
    assert exposed >= set(API_PORTS.values())
    assert any(keyword == "RUN" and "uv sync --frozen --no-dev" in rest for keyword, rest in instructions)
