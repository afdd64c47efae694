"""The example workflow only uses dd-preview flags that exist, on the events CI handles."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from dd_operator.cli.events import APPLY_ACTIONS
from dd_operator.cli.main import build_parser

WORKFLOW = Path(__file__).resolve().parents[3] / "examples" / "github" / "preview.yml"


def dd_preview_commands() -> list[list[str]]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    commands = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            for line in str(step.get("run", "")).splitlines():
                text = line.split("#")[0].strip()
                if text.startswith("dd-preview "):
                    words = shlex.split(text.split(">>")[0])
                    commands.append(words[1:])
    return commands


def test_workflow_triggers_on_every_action_ci_acts_on() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]["pull_request"]["types"]  # YAML 1.1 reads `on:` as True
    assert set(triggers) == APPLY_ACTIONS | {"closed"}
    assert workflow["permissions"] == {"contents": "read"}


def test_every_dd_preview_command_in_the_workflow_parses() -> None:
    commands = dd_preview_commands()
    assert [c[0] for c in commands] == ["ci", "wait", "describe", "ci"]
    parser = build_parser()
    for command in commands:
        parser.parse_args(command)
