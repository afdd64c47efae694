"""``dd-preview`` exit codes and messages for everything decided before the cluster is asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dd_devcluster.cluster import free_port
from dd_operator.cli.main import main
from dd_operator.cli.outcome import ExitCode
from tests.support.github_payloads import pull_request_example


def write_event(tmp_path: Path, payload: dict[str, Any]) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture
def unreachable_kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig naming a loopback port nothing listens on."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": f"https://127.0.0.1:{free_port()}",
                            "insecure-skip-tls-verify": True,
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    return path


def test_ci_without_an_event_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci"], env={}) == ExitCode.USAGE
    assert "--event PATH" in capsys.readouterr().err


def test_ci_with_a_missing_event_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ci", "--event", str(tmp_path / "nope.json")], env={}) == ExitCode.USAGE
    assert "does not exist" in capsys.readouterr().err


def test_ci_reads_github_event_path_and_ignores_a_labeled_event_without_a_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = write_event(tmp_path, pull_request_example("labeled"))
    output = tmp_path / "github_output"
    code = main(
        ["ci", "--kubeconfig", str(tmp_path / "absent")],
        env={"GITHUB_EVENT_PATH": str(event), "GITHUB_OUTPUT": str(output)},
    )
    assert code == ExitCode.OK
    assert "nothing to do: pull_request action 'labeled'" in capsys.readouterr().out
    assert output.read_text() == "action=ignore\n"


def test_ci_refuses_a_fork_with_exit_5_and_an_actions_annotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = pull_request_example("opened")
    payload["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    event = write_event(tmp_path, payload)
    assert main(["ci", "--event", str(event)], env={"GITHUB_ACTIONS": "true"}) == ExitCode.REFUSED
    err = capsys.readouterr().err
    assert "mallory/Hello-World" in err
    assert "::error title=dd-preview refused this pull request::" in err


def test_ci_with_an_unreachable_cluster_exits_6_and_says_rerun(
    tmp_path: Path, unreachable_kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = write_event(tmp_path, pull_request_example("opened"))
    code = main(["ci", "--event", str(event), "--kubeconfig", str(unreachable_kubeconfig)], env={})
    assert code == ExitCode.UNREACHABLE
    err = capsys.readouterr().err
    assert "cannot reach the Kubernetes API" in err and "re-run the job" in err
    assert "not-a-real-token" not in err


def test_ci_with_a_missing_kubeconfig_fails_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = write_event(tmp_path, pull_request_example("opened"))
    code = main(["ci", "--event", str(event), "--kubeconfig", str(tmp_path / "absent")], env={})
    assert code == ExitCode.FAILED
    assert "cannot load kubeconfig" in capsys.readouterr().err


def test_wait_needs_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wait"], env={}) == ExitCode.USAGE
    assert "NAME, --pr N, or --event PATH" in capsys.readouterr().err


def test_bad_flags_exit_2() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ci", "--provider", "aws"], env={})
    assert exc.value.code == ExitCode.USAGE
