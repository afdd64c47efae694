"""The pure planner: every branch as a table row, no cluster, no clock."""

from __future__ import annotations

from typing import Any

import pytest

from dd_operator.errors import PermanentFailure
from dd_operator.model import parse_spec
from dd_operator.naming import InstanceName, Stamp, dns_comment
from dd_operator.providers.base import DnsRecord, OperationState, Tunnel, Vm
from dd_operator.reconcile.context import desired_instance
from dd_operator.reconcile.observe import Observed
from dd_operator.reconcile.plan import PlanSettings, Situation, conditions_for, plan_next_step
from dd_operator.reconcile.probe import Attestation, Health
from dd_operator.reconcile.teardown import plan_teardown

STAMP = Stamp("test", "ns", "pr-1", "0f0f0f0f-1111-2222-3333-444444444444")
SPEC_RAW = {"repository": "acme/app", "pullRequest": 1, "commitSha": "a" * 40, "owner": "acme"}
SPEC = parse_spec(SPEC_RAW, domain="example.com")
DESIRED = desired_instance(STAMP, SPEC)
OLD = InstanceName("dd-pr-1-0000000000-bbbbbbb")
TOKENS = {"attest-token": "t"}
NO_EDGE = PlanSettings(edge=False, require_tdx=False, expected_mrtd="")
EDGE = PlanSettings(edge=True, require_tdx=False, expected_mrtd="")
TUNNEL = Tunnel("tid", "ddp.test.x")
OUR_DNS = DnsRecord("rid", "pr-1.example.com", "tid.cfargotunnel.com", dns_comment(STAMP))


def vm(name: str, status: str = "RUNNING") -> Vm:
    return Vm(InstanceName(name), "local", status, ("test", STAMP.uid), "a" * 40, "http://x")


def plan(status: dict[str, Any], observed: Observed, settings: PlanSettings = NO_EDGE, spec=SPEC):
    return plan_next_step(situation(status, observed, settings, spec=spec))


def situation(status, observed, settings=NO_EDGE, *, spec=SPEC, generation=1) -> Situation:
    return Situation(
        spec=spec, stamp=STAMP, generation=generation, status=status, observed=observed,
        desired=desired_instance(STAMP, spec), settings=settings,
    )


REC = {"name": DESIRED, "build": "a" * 40, "attempt": 0}
ATTESTED = {**REC, "mrtd": "ab" * 48, "dev": True}

CASES = [
    ("no secret yet", {}, Observed(vms={}), "write-secret", ""),
    ("nothing recorded", {}, Observed(vms={}, secret=TOKENS), "record-instance", DESIRED),
    ("recorded, absent", {"instances": [REC]}, Observed(vms={DESIRED: None}, secret=TOKENS), "create-vm", DESIRED),
    ("inserted once, gone since", {"instances": [{**REC, "zone": "us-central1-a"}]}, Observed(vms={DESIRED: None}, secret=TOKENS), "renew-insert", DESIRED),
    ("booting", {"instances": [REC]}, Observed(vms={DESIRED: vm(DESIRED, "STAGING")}, secret=TOKENS), "wait", ""),
    ("stopped", {"instances": [REC]}, Observed(vms={DESIRED: vm(DESIRED, "TERMINATED")}, secret=TOKENS), "start-vm", DESIRED),
    ("running, unhealthy", {"instances": [REC]}, Observed(vms={DESIRED: vm(DESIRED)}, secret=TOKENS, health=Health(False)), "wait", ""),
    ("healthy, quote in", {"instances": [REC]}, Observed(vms={DESIRED: vm(DESIRED)}, secret=TOKENS, health=Health(True), attestation=Attestation("ab" * 48, True)), "record-attestation", DESIRED),
    ("attested", {"instances": [ATTESTED]}, Observed(vms={DESIRED: vm(DESIRED)}, secret=TOKENS, health=Health(True)), "promote", DESIRED),
    ("converged", {"instances": [ATTESTED], "vm": {"name": DESIRED}}, Observed(vms={DESIRED: vm(DESIRED)}, secret=TOKENS), "done", ""),
    ("old one running after promote", {"instances": [{"name": OLD}, ATTESTED], "vm": {"name": DESIRED}}, Observed(vms={DESIRED: vm(DESIRED), OLD: vm(OLD)}, secret=TOKENS), "stop-vm", OLD),
    ("old one stopping", {"instances": [{"name": OLD}, ATTESTED], "vm": {"name": DESIRED}}, Observed(vms={DESIRED: vm(DESIRED), OLD: vm(OLD, "STOPPING")}, secret=TOKENS), "wait", ""),
    ("old one stopped", {"instances": [{"name": OLD}, ATTESTED], "vm": {"name": DESIRED}}, Observed(vms={DESIRED: vm(DESIRED), OLD: vm(OLD, "TERMINATED")}, secret=TOKENS), "delete-vm", OLD),
    ("old one gone", {"instances": [{"name": OLD}, ATTESTED], "vm": {"name": DESIRED}}, Observed(vms={DESIRED: vm(DESIRED), OLD: None}, secret=TOKENS), "forget-instance", OLD),
    ("op running", {"operation": {"kind": "insert", "name": "op1", "target": DESIRED}}, Observed(vms={}, operation=OperationState(done=False)), "wait", ""),
    ("op done", {"operation": {"kind": "insert", "name": "op1", "target": DESIRED}}, Observed(vms={}, operation=OperationState(done=True)), "finish-operation", DESIRED),
    ("failed this generation", {"instances": [{**REC, "failedReason": "InvalidMachineType", "failedGeneration": 1}]}, Observed(vms={DESIRED: None}, secret=TOKENS), "wait", ""),
    ("failed an older generation", {"instances": [{**REC, "failedReason": "InvalidMachineType", "failedGeneration": 0}]}, Observed(vms={DESIRED: None}, secret=TOKENS), "create-vm", DESIRED),
]


@pytest.mark.parametrize(("case", "status", "observed", "kind", "target"), CASES, ids=[c[0] for c in CASES])
def test_next_step(case: str, status: dict[str, Any], observed: Observed, kind: str, target: str) -> None:
    step = plan(status, observed)
    assert (step.kind, step.target) == (kind, target)


def test_old_vm_is_not_touched_before_the_new_one_is_promoted() -> None:
    status = {"instances": [{"name": OLD}, REC], "vm": {"name": OLD}}
    observed = Observed(vms={OLD: vm(OLD), DESIRED: vm(DESIRED)}, secret=TOKENS, health=Health(False))
    assert plan(status, observed).kind == "wait"


def test_mutating_steps_record_intent_and_waits_do_not() -> None:
    assert plan({"instances": [REC]}, Observed(vms={DESIRED: None}, secret=TOKENS)).mutates_cloud
    assert not plan({}, Observed(vms={}, secret=TOKENS)).mutates_cloud  # record-instance is status only


EDGE_CASES = [
    ("no tunnel", {}, Observed(vms={}, secret=TOKENS), "create-tunnel"),
    ("tunnel not configured", {}, Observed(vms={}, secret=TOKENS, tunnel=TUNNEL), "configure-tunnel"),
    ("token not stored", {"tunnel": {"id": "tid"}}, Observed(vms={}, secret=TOKENS, tunnel=TUNNEL), "write-secret"),
    ("no record", {"tunnel": {"id": "tid"}}, Observed(vms={}, secret={**TOKENS, "tunnel-id": "tid"}, tunnel=TUNNEL), "create-dns"),
    ("someone else's record", {"tunnel": {"id": "tid"}}, Observed(vms={}, secret={**TOKENS, "tunnel-id": "tid"}, tunnel=TUNNEL, dns=DnsRecord("r", "pr-1.example.com", "elsewhere", "not ours")), "wait"),
    ("our record, old tunnel", {"tunnel": {"id": "tid"}}, Observed(vms={}, secret={**TOKENS, "tunnel-id": "tid"}, tunnel=TUNNEL, dns=DnsRecord("r", "pr-1.example.com", "old.cfargotunnel.com", dns_comment(STAMP))), "delete-dns"),
    ("edge complete", {"tunnel": {"id": "tid"}}, Observed(vms={}, secret={**TOKENS, "tunnel-id": "tid"}, tunnel=TUNNEL, dns=OUR_DNS), "record-instance"),
]


@pytest.mark.parametrize(("case", "status", "observed", "kind"), EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_edge_comes_before_any_vm(case: str, status: dict[str, Any], observed: Observed, kind: str) -> None:
    assert plan(status, observed, EDGE).kind == kind


def test_dns_conflict_is_a_clear_condition() -> None:
    observed = Observed(vms={}, secret=TOKENS, tunnel=TUNNEL, dns=DnsRecord("r", "pr-1.example.com", "x", "someone"))
    conds = {c.type: c for c in conditions_for(situation({"tunnel": {"id": "tid"}}, observed, EDGE))}
    assert conds["DNSReady"].reason == "DNSConflict"
    assert "does not own" in conds["DNSReady"].message
    assert conds["Ready"].status == "False"


def test_suspend_stops_running_vms_and_keeps_records() -> None:
    spec = parse_spec({**SPEC_RAW, "suspend": True}, domain="example.com")
    status = {"instances": [ATTESTED], "vm": {"name": DESIRED}}
    assert (plan(status, Observed(vms={DESIRED: vm(DESIRED)}, secret=TOKENS), spec=spec).kind) == "stop-vm"
    assert plan(status, Observed(vms={DESIRED: vm(DESIRED, "TERMINATED")}, secret=TOKENS), spec=spec).kind == "done"


def test_ready_names_the_first_blocking_condition() -> None:
    observed = Observed(vms={DESIRED: vm(DESIRED)}, secret=TOKENS, public_health=Health(True))
    conds = conditions_for(situation({"instances": [REC]}, observed, generation=3))
    ready = conds[-1]
    assert (ready.type, ready.status, ready.reason) == ("Ready", "False", "Starting")


def test_dev_quote_is_refused_when_tdx_is_required() -> None:
    status = {"instances": [ATTESTED], "vm": {"name": DESIRED, "mrtd": "ab" * 48, "dev": True}}
    strict = PlanSettings(edge=False, require_tdx=True, expected_mrtd="")
    conds = {c.type: c for c in conditions_for(situation(status, Observed(vms={DESIRED: vm(DESIRED)}, public_health=Health(True)), strict))}
    assert (conds["Attested"].status, conds["Attested"].reason) == ("False", "NotTDX")


def test_permanent_error_becomes_the_vm_condition() -> None:
    conds = {c.type: c for c in conditions_for(situation({}, Observed(vms={})), error=PermanentFailure("InvalidMachineType", "c3-bogus-4 does not exist"))}
    assert conds["VMReady"].reason == "InvalidMachineType"


TEARDOWN = [
    ("record first", Observed(vms={DESIRED: vm(DESIRED)}, tunnel=TUNNEL, dns=OUR_DNS, secret=TOKENS), "delete-dns"),
    ("then stop", Observed(vms={DESIRED: vm(DESIRED)}, tunnel=TUNNEL, secret=TOKENS), "stop-vm"),
    ("wait for stop", Observed(vms={DESIRED: vm(DESIRED, "STOPPING")}, tunnel=TUNNEL, secret=TOKENS), "wait"),
    ("then delete", Observed(vms={DESIRED: vm(DESIRED, "TERMINATED")}, tunnel=TUNNEL, secret=TOKENS), "delete-vm"),
    ("then tunnel", Observed(vms={DESIRED: None}, tunnel=TUNNEL, secret=TOKENS), "delete-tunnel"),
    ("then secret", Observed(vms={DESIRED: None}, secret=TOKENS), "delete-secret"),
    ("404 everywhere is done", Observed(vms={DESIRED: None}), "done"),
]


@pytest.mark.parametrize(("case", "observed", "kind"), TEARDOWN, ids=[c[0] for c in TEARDOWN])
def test_teardown_order(case: str, observed: Observed, kind: str) -> None:
    assert plan_teardown(status={}, observed=observed, edge=True).kind == kind


def test_converged_but_not_serving_is_looked_at_again_soon() -> None:
    status = {"instances": [ATTESTED], "vm": {"name": DESIRED}}
    serving = plan(status, Observed(vms={DESIRED: vm(DESIRED)}, secret=TOKENS, public_health=Health(True)))
    broken = plan(status, Observed(vms={DESIRED: vm(DESIRED)}, secret=TOKENS, public_health=Health(False)))
    assert (serving.kind, broken.kind) == ("done", "done")
    assert broken.delay < serving.delay
