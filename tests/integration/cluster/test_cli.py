"""``dd-preview`` against the real kube-apiserver, fed GitHub's own pull_request payloads.

The CLI runs as the installed console script (a child process, as in CI); the results
are checked with kubectl, as a person would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dd_devcluster.cluster import LocalCluster
from dd_operator.cli.main import main
from dd_operator.cli.outcome import ExitCode
from tests.support.github_payloads import pull_request_example
from tests.support.wait import wait_for

pytestmark = pytest.mark.cluster

DD_PREVIEW = Path(sys.executable).with_name("dd-preview")
BEFORE = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
AFTER = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


def run(
    cluster: LocalCluster, tmp_path: Path, *args: str, event: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    env = cluster.env()
    env["GITHUB_OUTPUT"] = str(tmp_path / "github_output")
    if event is not None:
        path = tmp_path / f"event-{event['action']}.json"
        path.write_text(json.dumps(event))
        env["GITHUB_EVENT_PATH"] = str(path)
    return subprocess.run(
        [str(DD_PREVIEW), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def run_here(
    cluster: LocalCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *args: str,
    event: dict[str, Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The same CLI in this process (no interpreter start-up) for the many short calls."""
    env = {"GITHUB_OUTPUT": str(tmp_path / "github_output")}
    if event is not None:
        path = tmp_path / f"event-{event['action']}.json"
        path.write_text(json.dumps(event))
        env["GITHUB_EVENT_PATH"] = str(path)
    capsys.readouterr()
    code = main([*args, "--kubeconfig", str(cluster.kubeconfig)], env=env)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def get_pe(cluster: LocalCluster, namespace: str, name: str = "pr-2") -> dict[str, Any] | None:
    r = cluster.kubectl(
        "get", "pe", name, "-n", namespace, "-o", "json", "--show-managed-fields", check=False
    )
    if r.returncode != 0:
        assert "NotFound" in r.stderr, r.stderr
        return None
    return dict(json.loads(r.stdout))


def opened_at_before() -> dict[str, Any]:
    """The real ``opened`` payload at the commit the real ``synchronize`` pushed over."""
    payload = pull_request_example("opened")
    payload["pull_request"]["head"]["sha"] = BEFORE
    return payload


def set_status(cluster: LocalCluster, namespace: str, status: dict[str, Any]) -> None:
    cluster.kubectl(
        "patch",
        "pe",
        "pr-2",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def test_opened_synchronize_closed_lifecycle(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    r = run(cluster, tmp_path, "ci", "-n", namespace, "--ttl", "72h", event=opened_at_before())
    assert r.returncode == ExitCode.OK, r.stderr
    assert f"created previewenvironment {namespace}/pr-2 for Codertocat/Hello-World#2" in r.stdout
    pe = get_pe(cluster, namespace)
    assert pe is not None
    assert pe["spec"] == {
        "repository": "Codertocat/Hello-World",
        "pullRequest": 2,
        "commitSha": BEFORE,
        "owner": "Codertocat",
        "ttl": "72h",
        "provider": "local",
        "suspend": False,
    }
    assert pe["metadata"]["labels"] == {
        "preview.devopsdefender.com/repository": "Codertocat.Hello-World",
        "preview.devopsdefender.com/pull-request": "2",
    }
    managers = {(m["manager"], m["operation"]) for m in pe["metadata"]["managedFields"]}
    assert ("dd-preview", "Apply") in managers
    outputs = (tmp_path / "github_output").read_text()
    assert f"name=pr-2\nnamespace={namespace}\nsha={BEFORE}\n" in outputs

    # Someone suspends it by hand; CI's next apply must not undo a field it does not own.
    cluster.kubectl(
        "patch", "pe", "pr-2", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )

    r = run(
        cluster,
        tmp_path,
        "ci",
        "-n",
        namespace,
        "--ttl",
        "72h",
        event=pull_request_example("synchronize"),
    )
    assert r.returncode == ExitCode.OK, r.stderr
    assert f"commit {BEFORE[:12]} -> {AFTER[:12]}" in r.stdout
    pe = get_pe(cluster, namespace)
    assert pe is not None
    assert pe["spec"]["commitSha"] == AFTER
    assert pe["spec"]["suspend"] is True
    assert pe["metadata"]["generation"] == 3

    r = run(
        cluster,
        tmp_path,
        "ci",
        "-n",
        namespace,
        "--ttl",
        "72h",
        event=pull_request_example("reopened"),
    )
    assert r.returncode == ExitCode.OK, r.stderr
    assert "already at commit" in r.stdout
    pe = get_pe(cluster, namespace)
    assert pe is not None and pe["metadata"]["generation"] == 3, "an unchanged apply is a no-op"

    # Dropping --ttl from the workflow drops it from the object (CI owned that field).
    r = run(cluster, tmp_path, "ci", "-n", namespace, event=pull_request_example("synchronize"))
    assert r.returncode == ExitCode.OK, r.stderr
    pe = get_pe(cluster, namespace)
    assert pe is not None and "ttl" not in pe["spec"]

    r = run(cluster, tmp_path, "ci", "-n", namespace, event=pull_request_example("closed"))
    assert r.returncode == ExitCode.OK, r.stderr
    assert f"deleted previewenvironment {namespace}/pr-2" in r.stdout
    assert get_pe(cluster, namespace) is None

    r = run(cluster, tmp_path, "ci", "-n", namespace, event=pull_request_example("closed"))
    assert r.returncode == ExitCode.OK, r.stderr
    assert "does not exist; nothing to delete" in r.stdout


def test_ignored_and_refused_events_leave_the_cluster_alone(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    r = run(cluster, tmp_path, "ci", "-n", namespace, event=pull_request_example("labeled"))
    assert (r.returncode, r.stdout.startswith("nothing to do")) == (ExitCode.OK, True)
    fork = pull_request_example("opened")
    fork["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    r = run(cluster, tmp_path, "ci", "-n", namespace, event=fork)
    assert r.returncode == ExitCode.REFUSED
    assert get_pe(cluster, namespace) is None


def test_changing_an_immutable_field_fails_with_the_apiservers_message(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    assert (
        run(
            cluster, tmp_path, "ci", "-n", namespace, event=pull_request_example("opened")
        ).returncode
        == ExitCode.OK
    )
    r = run(
        cluster,
        tmp_path,
        "ci",
        "-n",
        namespace,
        "--owner",
        "someone-else",
        event=pull_request_example("synchronize"),
    )
    assert r.returncode == ExitCode.FAILED
    assert "owner is immutable" in r.stderr
    pe = get_pe(cluster, namespace)
    assert pe is not None and pe["spec"]["owner"] == "Codertocat"


def test_reopening_while_the_old_environment_tears_down_waits_then_recreates(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    assert (
        run(
            cluster, tmp_path, "ci", "-n", namespace, event=pull_request_example("opened")
        ).returncode
        == ExitCode.OK
    )
    # Stand in for the operator's finalizer: the object lingers after delete.
    cluster.kubectl(
        "patch",
        "pe",
        "pr-2",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":["preview.devopsdefender.com/teardown"]}}',
    )
    assert (
        run(
            cluster, tmp_path, "ci", "-n", namespace, event=pull_request_example("closed")
        ).returncode
        == ExitCode.OK
    )
    first = get_pe(cluster, namespace)
    assert first is not None and first["metadata"].get("deletionTimestamp")

    event = tmp_path / "reopened.json"
    event.write_text(json.dumps(pull_request_example("reopened")))
    log = tmp_path / "reopen.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(DD_PREVIEW), "ci", "-n", namespace, "--event", str(event)],
            env=cluster.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for(
                lambda: "still being torn down" in log.read_text(),
                timeout=30,
                message="the CLI to notice the teardown",
            )
            assert proc.poll() is None, "it must wait, not re-apply onto the dying object"
            cluster.kubectl(
                "patch",
                "pe",
                "pr-2",
                "-n",
                namespace,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
            )
            assert proc.wait(timeout=60) == ExitCode.OK, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "created previewenvironment" in log.read_text()
    second = get_pe(cluster, namespace)
    assert second is not None and not second["metadata"].get("deletionTimestamp")
    assert second["metadata"]["uid"] != first["metadata"]["uid"]


def test_wait_reports_blocking_condition_ready_url_and_failure(
    cluster: LocalCluster, namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = pull_request_example("opened")
    assert (
        run_here(cluster, tmp_path, capsys, "ci", "-n", namespace, event=event).returncode
        == ExitCode.OK
    )
    generation = get_pe(cluster, namespace)["metadata"]["generation"]  # type: ignore[index]

    r = run_here(
        cluster,
        tmp_path,
        capsys,
        "wait",
        "-n",
        namespace,
        "--timeout",
        "1",
        "--interval",
        "0.2",
        event=event,
    )
    assert r.returncode == ExitCode.TIMEOUT
    assert "has not yet processed generation" in r.stderr and "gave up after 1s" in r.stderr

    set_status(
        cluster,
        namespace,
        {
            "observedGeneration": generation,
            "conditions": [
                {
                    "type": "VMReady",
                    "status": "False",
                    "reason": "ZoneExhausted",
                    "message": "us-central1-a has no capacity; trying us-central1-b",
                    "observedGeneration": generation,
                    "lastTransitionTime": "2026-12-03T10:00:00Z",
                },
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "VMReady",
                    "message": "waiting for VM",
                    "observedGeneration": generation,
                    "lastTransitionTime": "2026-12-03T10:00:00Z",
                },
            ],
        },
    )
    r = run_here(
        cluster,
        tmp_path,
        capsys,
        "wait",
        "--pr",
        "2",
        "-n",
        namespace,
        "--timeout",
        "1",
        "--interval",
        "0.2",
    )
    assert r.returncode == ExitCode.TIMEOUT
    assert "blocked on VMReady: ZoneExhausted: us-central1-a has no capacity" in r.stderr

    set_status(
        cluster,
        namespace,
        {
            "url": "https://pr-2.preview.example.com",
            "conditions": [
                {
                    "type": "VMReady",
                    "status": "True",
                    "reason": "Running",
                    "message": "",
                    "observedGeneration": generation,
                    "lastTransitionTime": "2026-12-03T10:01:00Z",
                },
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Serving",
                    "message": "",
                    "observedGeneration": generation,
                    "lastTransitionTime": "2026-12-03T10:01:00Z",
                },
            ],
        },
    )
    r = run_here(cluster, tmp_path, capsys, "wait", "-n", namespace, "--timeout", "5", event=event)
    assert r.returncode == ExitCode.OK, r.stderr
    assert r.stdout.strip() == "https://pr-2.preview.example.com"
    assert "url=https://pr-2.preview.example.com" in (tmp_path / "github_output").read_text()

    r = run_here(cluster, tmp_path, capsys, "get", "-n", namespace)
    assert r.returncode == ExitCode.OK
    assert "pr-2" in r.stdout and "Serving" in r.stdout
    r = run_here(cluster, tmp_path, capsys, "get", "pr-2", "-n", namespace, "-o", "json")
    assert json.loads(r.stdout)["status"]["url"] == "https://pr-2.preview.example.com"
    r = run_here(cluster, tmp_path, capsys, "describe", "--pr", "2", "-n", namespace)
    assert r.returncode == ExitCode.OK
    assert "Commit:        ec26c3e57ca3a959ca5aad62de7213c562f8c821" in r.stdout

    set_status(
        cluster,
        namespace,
        {
            "conditions": [
                {
                    "type": "DNSReady",
                    "status": "False",
                    "reason": "DNSConflict",
                    "message": "pr-2.preview.example.com is a CNAME owned by someone else",
                    "observedGeneration": generation,
                    "lastTransitionTime": "2026-12-03T10:02:00Z",
                },
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "DNSReady",
                    "message": "blocked",
                    "observedGeneration": generation,
                    "lastTransitionTime": "2026-12-03T10:02:00Z",
                },
            ],
        },
    )
    r = run_here(cluster, tmp_path, capsys, "wait", "-n", namespace, "--timeout", "30", event=event)
    assert r.returncode == ExitCode.FAILED
    assert "DNSConflict" in r.stderr and "owned by someone else" in r.stderr


def test_wait_get_and_describe_on_a_missing_environment_exit_4(
    cluster: LocalCluster, namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (["wait", "--pr", "7"], ["get", "pr-7"], ["describe", "pr-7", "-o", "json"]):
        extra = ["--timeout", "1"] if args[0] == "wait" else []
        r = run_here(cluster, tmp_path, capsys, *args, "-n", namespace, *extra)
        assert r.returncode == ExitCode.NOT_FOUND, (args, r.stderr)
        assert f"previewenvironment {namespace}/pr-7 not found" in r.stderr
    r = run_here(cluster, tmp_path, capsys, "get", "-n", namespace)
    assert (r.returncode, r.stdout.strip()) == (ExitCode.OK, "No PreviewEnvironments found.")
