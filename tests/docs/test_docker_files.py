"""The Dockerfile and docker-compose.yml run commands and settings that the code really has.

Nothing here needs Docker: the files are parsed, so a renamed command or setting fails the
ordinary test run instead of the first deployment.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.cli import COMMANDS

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def _argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the "NAME=value" list form
        return dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _dockerfile_instruction(name: str) -> list[str]:
    """The argv of the last `name` instruction (exec or shell form), [] when there is none."""
    argv: list[str] = []
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() == name:
            rest = rest.strip()
            argv = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    return argv


def test_compose_has_rabbitmq_the_hub_and_the_simulators() -> None:
    assert {"rabbitmq", "hub", "simulators"} <= set(_compose()["services"])


def test_every_signhub_command_compose_runs_is_a_cli_command() -> None:
    for name, service in _compose()["services"].items():
        if "command" not in service:
            continue
        argv = _argv(service["command"])
        if argv[0] == "signhub":
            assert argv[1] in COMMANDS, f"{name} runs `signhub {argv[1]}`, not one of {COMMANDS}"
    assert _argv(_compose()["services"]["hub"]["command"])[:2] == ["signhub", "run"]
    assert _argv(_compose()["services"]["simulators"]["command"])[:2] == ["signhub", "simulate"]


def test_the_hub_waits_for_a_healthy_broker_and_the_simulators_for_the_hub() -> None:
    services = _compose()["services"]
    assert "rabbitmq-diagnostics" in services["rabbitmq"]["healthcheck"]["test"]
    assert services["hub"]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert services["simulators"]["depends_on"]["hub"]["condition"] == "service_started"


def test_every_environment_name_given_to_signhub_is_a_signhub_setting() -> None:
    services = _compose()["services"]
    for name in ("hub", "simulators"):
        for key in _environment(services[name]):
            assert key.startswith("SIGNHUB_"), f"{name}: {key} is not a SIGNHUB_ setting"


def test_every_environment_name_given_to_the_hub_is_a_field_of_its_settings() -> None:
    settings = pytest.importorskip("hub.settings", reason="hub.settings is not in this tree yet")
    fields = set(settings.Settings.model_fields)
    for key in _environment(_compose()["services"]["hub"]):
        assert key.removeprefix("SIGNHUB_").lower() in fields, f"{key} is not a hub setting"


def test_the_hub_refuses_to_start_without_a_data_key_and_shares_the_file_area() -> None:
    services = _compose()["services"]
    assert _environment(services["hub"])["SIGNHUB_DATA_KEY"].startswith("${SIGNHUB_DATA_KEY:?")
    hub_volumes, simulator_volumes = set(services["hub"]["volumes"]), set(services["simulators"]["volumes"])
    file_area = {v for v in hub_volumes if v.endswith(":/files")}
    assert file_area and file_area <= simulator_volumes
    assert any(v.endswith(":/data") for v in hub_volumes)


def test_the_image_runs_signhub_as_a_non_root_user() -> None:
    command = _dockerfile_instruction("ENTRYPOINT") + _dockerfile_instruction("CMD")
    assert command[:2] == ["signhub", "run"]
    assert command[1] in COMMANDS
    assert _dockerfile_instruction("USER") not in ([], ["root"], ["0"])
    assert _dockerfile_instruction("FROM") == ["python:3.11-slim"]
    assert _dockerfile_instruction("EXPOSE") == ["8080"]


def test_the_build_context_has_the_package_and_does_not_ignore_it() -> None:
    build = _compose()["services"]["hub"]["build"]
    context = REPO / (build if isinstance(build, str) else build.get("context", "."))
    assert context.resolve() == REPO
    assert (context / "pyproject.toml").is_file()
    assert (context / "Dockerfile").is_file()
    ignored = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    assert not ignored & {"pyproject.toml", "contracts", "hub", "simulators", "*", "."}
