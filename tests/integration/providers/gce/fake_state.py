"""The fake Compute API's state: instances, operations, their timelines and GCE's refusals.

No HTTP here (``fake.py`` serves it). What real GCE refuses, this refuses with the same
status and a message of the same shape: a malformed name, an unknown machine type, TDX
without ``onHostMaintenance: TERMINATE``, TDX on a non-C3 machine, an unknown image,
``maxRunDuration`` without a termination action, malformed labels, a duplicate name (409).

Timelines: an instance moves PROVISIONING -> STAGING -> RUNNING (insert, start) or
STOPPING -> TERMINATED (stop) or STOPPING -> gone (delete). A step happens every
``step_seconds`` or on every direct read of the instance or its operation, whichever
comes first, so a test can be fast (read-driven) and time-driven at once.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "IMAGES",
    "MACHINE_TYPES",
    "ApiError",
    "FakeInstance",
    "FakeOperation",
    "Timeline",
    "match_filter",
    "validate_insert",
]

NAME_RE = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
MACHINE_TYPES = frozenset(
    [f"e2-{kind}" for kind in ("micro", "small", "medium")]
    + [f"{series}-standard-{n}" for series in ("e2", "n2", "n2d") for n in (2, 4, 8, 16, 32)]
    + [
        f"c3-{kind}-{n}"
        for kind in ("standard", "highcpu", "highmem")
        for n in (4, 8, 22, 44, 88, 176)
    ]
)
IMAGES: dict[tuple[str, str], bool] = {
    ("ubuntu-os-cloud", "ubuntu-2404-lts-amd64"): True,
    ("ubuntu-os-cloud", "ubuntu-2204-lts"): True,
    ("cos-cloud", "cos-stable"): True,
    ("debian-cloud", "debian-12"): False,
}
"""(project, family) -> whether the image carries the TDX_CAPABLE guest OS feature."""
MAX_USER_DATA = 256 * 1024


class ApiError(Exception):
    """An HTTP error answer in GCE's JSON shape."""

    def __init__(
        self, status: int, reason: str, message: str, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        detail = {"message": self.message, "domain": "global", "reason": self.reason}
        return {"error": {"code": self.status, "message": self.message, "errors": [detail]}}


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Timeline:
    """States one transition walks through; the last one is where it rests."""

    states: tuple[str, ...]
    step_seconds: float
    advance_on_read: bool
    started: float = field(default_factory=time.monotonic)
    reads: int = 0

    def read(self) -> None:
        if self.advance_on_read:
            self.reads += 1

    def index(self) -> int:
        by_time = (
            int((time.monotonic() - self.started) / self.step_seconds)
            if self.step_seconds > 0
            else len(self.states)
        )
        return min(len(self.states) - 1, max(by_time, self.reads))

    def state(self) -> str:
        return self.states[self.index()]

    def finished(self) -> bool:
        return self.index() == len(self.states) - 1


@dataclass
class FakeInstance:
    project: str
    zone: str
    name: str
    body: dict[str, Any]
    ip: str
    id: int
    timeline: Timeline
    created: float = field(default_factory=time.monotonic)
    created_at: str = field(default_factory=now_rfc3339)
    booted: bool = False

    @property
    def status(self) -> str:
        return self.timeline.state()

    def user_data(self) -> str:
        items = self.body.get("metadata", {}).get("items", [])
        return next((i.get("value", "") for i in items if i.get("key") == "user-data"), "")

    def labels(self) -> dict[str, str]:
        return dict(self.body.get("labels", {}))

    def to_json(self, base: str) -> dict[str, Any]:
        data = dict(self.body)
        zone_url = f"{base}/projects/{self.project}/zones/{self.zone}"
        nics = []
        for n, nic in enumerate(data.get("networkInterfaces", [{}])):
            nic = {**nic, "name": f"nic{n}", "networkIP": self.ip}
            nic["accessConfigs"] = [{**ac, "natIP": self.ip} for ac in nic.get("accessConfigs", [])]
            nics.append(nic)
        data.update(
            kind="compute#instance",
            id=str(self.id),
            creationTimestamp=self.created_at,
            status=self.status,
            zone=zone_url,
            selfLink=f"{zone_url}/instances/{self.name}",
            machineType=f"{base}/projects/{self.project}/{data.get('machineType', '')}",
            networkInterfaces=nics,
        )
        return data


@dataclass
class FakeOperation:
    project: str
    zone: str
    name: str
    kind: str
    target: str
    timeline: Timeline
    error: dict[str, Any] | None = None
    http_error: tuple[int, str] | None = None
    inserted_at: str = field(default_factory=now_rfc3339)

    @property
    def done(self) -> bool:
        return self.timeline.finished()

    def to_json(self, base: str) -> dict[str, Any]:
        zone_url = f"{base}/projects/{self.project}/zones/{self.zone}"
        data: dict[str, Any] = {
            "kind": "compute#operation",
            "id": str(abs(hash(self.name)) % 10**18),
            "name": self.name,
            "zone": zone_url,
            "operationType": self.kind,
            "targetLink": f"{zone_url}/instances/{self.target}",
            "status": "DONE" if self.done else "RUNNING",
            "progress": 100 if self.done else 0,
            "insertTime": self.inserted_at,
            "selfLink": f"{zone_url}/operations/{self.name}",
            "user": "operator@fake.iam.gserviceaccount.com",
        }
        if self.done and self.error is not None:
            data["error"] = self.error
            if self.http_error:
                data["httpErrorStatusCode"], data["httpErrorMessage"] = self.http_error
        return data


def _invalid(field_name: str, value: object, why: str) -> ApiError:
    return ApiError(400, "invalid", f"Invalid value for field '{field_name}': '{value}'. {why}")


def validate_insert(project: str, zone: str, body: dict[str, Any]) -> None:
    """Raise ApiError for anything real GCE refuses synchronously on instances.insert."""
    name = str(body.get("name", ""))
    if not NAME_RE.match(name):
        raise _invalid(
            "resource.name",
            name,
            "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'",
        )
    machine = str(body.get("machineType", ""))
    m = re.search(r"zones/([^/]+)/machineTypes/([^/]+)$", machine)
    if not m or m.group(1) != zone or m.group(2) not in MACHINE_TYPES:
        raise _invalid(
            "resource.machineType",
            machine,
            f"Machine type with name '{machine.rsplit('/', 1)[-1]}' "
            f"does not exist in zone '{zone}'.",
        )
    machine_type = m.group(2)
    scheduling = body.get("scheduling", {})
    tdx = body.get("confidentialInstanceConfig", {}).get("confidentialInstanceType") == "TDX"
    if tdx and scheduling.get("onHostMaintenance") != "TERMINATE":
        raise _invalid(
            "resource.scheduling.onHostMaintenance",
            scheduling.get("onHostMaintenance", "MIGRATE"),
            "Confidential VMs of type TDX must use onHostMaintenance TERMINATE.",
        )
    if tdx and not machine_type.startswith("c3-"):
        raise _invalid(
            "resource.confidentialInstanceConfig.confidentialInstanceType",
            "TDX",
            f"Confidential instance type TDX is not supported on machine type '{machine_type}'.",
        )
    if "maxRunDuration" in scheduling and "instanceTerminationAction" not in scheduling:
        raise _invalid(
            "resource.scheduling.instanceTerminationAction", "", "Required with maxRunDuration."
        )
    boot = [d for d in body.get("disks", []) if d.get("boot")]
    if len(boot) != 1:
        raise _invalid("resource.disks", len(boot), "Exactly one boot disk is required.")
    source = str(boot[0].get("initializeParams", {}).get("sourceImage", ""))
    im = re.search(r"projects/([^/]+)/global/images/family/([^/]+)$", source)
    if not im or (im.group(1), im.group(2)) not in IMAGES:
        raise ApiError(404, "notFound", f"The resource '{source}' was not found")
    if tdx and not IMAGES[(im.group(1), im.group(2))]:
        raise _invalid(
            "resource.disks[0].initializeParams.sourceImage", source, "Image is not TDX_CAPABLE."
        )
    for key, value in body.get("labels", {}).items():
        if not LABEL_KEY_RE.match(key) or not LABEL_VALUE_RE.match(str(value)):
            raise _invalid(
                f"resource.labels.{key}",
                value,
                "Label keys and values must match GCE's label rules.",
            )
    items = body.get("metadata", {}).get("items", [])
    if any(len(str(i.get("value", ""))) > MAX_USER_DATA for i in items):
        raise _invalid("resource.metadata", "user-data", "Metadata value is too large.")


_TERM_RE = re.compile(
    r'\s*(?:AND\s+)?(?P<field>[a-zA-Z][\w.-]*)\s*(?P<op>!=|=|:)\s*(?:"(?P<q>[^"]*)"|(?P<v>[^\s()"]+))\s*'
)


def match_filter(expression: str, instance: dict[str, Any]) -> bool:
    """GCE's list filter, the subset we use: ``field = "v"``, ``!=``, ``labels.k = v``, AND."""
    pos, terms = 0, []
    while pos < len(expression):
        m = _TERM_RE.match(expression, pos)
        if not m or m.end() == pos:
            raise ApiError(
                400,
                "invalid",
                f"Invalid value for field 'filter': '{expression}'. "
                "Invalid list filter expression.",
            )
        terms.append(m)
        pos = m.end()
    for term in terms:
        path, want = (
            term.group("field"),
            term.group("q") if term.group("q") is not None else term.group("v"),
        )
        value: Any = instance
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if term.group("op") == ":":
            ok = value is not None and (want == "*" or str(value) == want)
        else:
            ok = (str(value) == want) if value is not None else False
            ok = ok if term.group("op") == "=" else not ok
        if not ok:
            return False
    return True
