"""Operator configuration, read once from the environment by ``OperatorSettings.from_env``.

Settings are grouped by topic in frozen dataclasses (as kopf's ``configuration.py``
does). Secrets (API tokens) are read from the environment, which the Deployment fills
from Kubernetes Secrets; they are never logged and ``repr`` hides them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CloudflareSettings",
    "ConfigError",
    "GceSettings",
    "GitHubSettings",
    "HealthSettings",
    "LocalSettings",
    "OperatorSettings",
    "ReaperSettings",
]


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _get(env: Mapping[str, str], key: str, default: str) -> str:
    return env.get(key, "").strip() or default


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from None


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}")


def _list(env: Mapping[str, str], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(key, "").strip()
    return tuple(p.strip() for p in raw.split(",") if p.strip()) if raw else default


@dataclass(frozen=True)
class LocalSettings:
    """The ``local`` VM provider: control planes as child processes on this machine."""

    state_dir: Path
    """Where pid/state records live, so a restarted operator finds its processes."""
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class GceSettings:
    project: str = ""
    zones: tuple[str, ...] = ("us-central1-a", "us-central1-b", "us-central1-c")
    machine_type: str = "c3-standard-4"
    """C3 is the series that offers Intel TDX."""
    image_project: str = "ubuntu-os-cloud"
    image_family: str = "ubuntu-2404-lts-amd64"
    network: str = "global/networks/default"
    subnetwork: str = ""
    service_account: str = ""
    disk_size_gb: int = 20
    endpoint: str = ""
    """Empty means the public API; tests point it at the local fake."""
    credentials_file: str = ""
    """A service-account key file (mounted from a Secret); empty means ADC."""
    anonymous: bool = False
    """Anonymous credentials, for the local fake only."""
    ttl_grace_seconds: int = 3600
    """``maxRunDuration`` = ttl + this, so a VM deletes itself if the operator is gone."""
    zone_cooldown_seconds: int = 900
    """How long a zone that reported exhaustion is skipped."""
    request_timeout_seconds: int = 30
    """Per GCE API call; a slower answer is a transient failure, retried by reconcile."""
    secret_manager_endpoint: str = ""
    """Secret Manager API for the VMs' tokens; empty means the public API (tests: the fake)."""


@dataclass(frozen=True)
class CloudflareSettings:
    account_id: str = ""
    zone_id: str = ""
    api_token: str = field(default="", repr=False)
    base_url: str = ""
    """Empty means the public API; tests point it at the local fake."""
    budget_requests: int = 1100
    """Cloudflare allows 1,200 per 5 minutes per token; stay under it with headroom."""
    budget_window_seconds: int = 300
    probe_address: str = ""
    """``host:port`` where readiness probes of ``https://{hostname}`` connect (Host and SNI
    still name the hostname); empty means normal DNS. Tests point it at the fake edge."""
    probe_ca_file: str = ""
    """CA bundle that verifies the edge's certificate on probes; empty means system CAs."""


@dataclass(frozen=True)
class GitHubSettings:
    token: str = field(default="", repr=False)
    api_url: str = "https://api.github.com"


@dataclass(frozen=True)
class ReaperSettings:
    interval_seconds: int = 300
    dry_run: bool = False
    min_age_seconds: int = 900
    max_deletions: int = 10
    expiry_warning_seconds: int = 3600
    lease_namespace: str = "dd-preview"
    """Where the reaper's Lease lives: the operator's own namespace (DD_OPERATOR_NAMESPACE)."""
    lease_seconds: int = 30
    """A replica that stops renewing loses the reaper after this long; renewed every third."""


@dataclass(frozen=True)
class HealthSettings:
    metrics_host: str = "0.0.0.0"
    """Bind address of ``/metrics`` and ``/healthz``; tests use 127.0.0.1."""
    metrics_port: int = 9090
    """0 turns the server off."""


@dataclass(frozen=True)
class OperatorSettings:
    cluster_id: str
    domain: str
    edge: str
    """``none`` (status.url is the VM's own URL) or ``cloudflare``."""
    control_plane_port: int
    health_checks: int
    """Consecutive healthy ``/health`` answers before a VM counts as serving."""
    require_tdx: bool
    """When false, a labelled development quote satisfies ``Attested`` (local provider)."""
    expected_mrtd: str
    edge_recheck_seconds: int
    """How often a converged environment re-reads its tunnel and record (drift detection)."""
    local: LocalSettings
    gce: GceSettings
    cloudflare: CloudflareSettings
    github: GitHubSettings
    reaper: ReaperSettings
    health: HealthSettings = field(default_factory=HealthSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        e = os.environ if env is None else env
        cluster_id = _get(e, "DD_CLUSTER_ID", "local")
        if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?", cluster_id):
            raise ConfigError(f"DD_CLUSTER_ID must be 1-20 chars of [a-z0-9-], got {cluster_id!r}")
        edge = _get(e, "DD_EDGE", "none")
        if edge not in {"none", "cloudflare"}:
            raise ConfigError(f"DD_EDGE must be 'none' or 'cloudflare', got {edge!r}")
        state_home = Path(_get(e, "XDG_STATE_HOME", str(Path.home() / ".local" / "state")))
        cf = CloudflareSettings(
            account_id=_get(e, "DD_CF_ACCOUNT_ID", ""),
            zone_id=_get(e, "DD_CF_ZONE_ID", ""),
            api_token=_get(e, "DD_CF_API_TOKEN", ""),
            base_url=_get(e, "DD_CF_API_BASE", ""),
            budget_requests=_int(e, "DD_CF_BUDGET_REQUESTS", 1100),
            budget_window_seconds=_int(e, "DD_CF_BUDGET_WINDOW_SECONDS", 300),
            probe_address=_get(e, "DD_EDGE_PROBE_ADDRESS", ""),
            probe_ca_file=_get(e, "DD_EDGE_PROBE_CA", ""),
        )
        if edge == "cloudflare":
            for key, val in (
                ("DD_CF_ACCOUNT_ID", cf.account_id),
                ("DD_CF_ZONE_ID", cf.zone_id),
                ("DD_CF_API_TOKEN", cf.api_token),
            ):
                if not val:
                    raise ConfigError(f"{key} is required when DD_EDGE=cloudflare")
        defaults = GceSettings()
        gce = GceSettings(
            project=_get(e, "DD_GCP_PROJECT", ""),
            zones=_list(e, "DD_GCP_ZONES", defaults.zones),
            machine_type=_get(e, "DD_GCP_MACHINE_TYPE", defaults.machine_type),
            image_project=_get(e, "DD_GCP_IMAGE_PROJECT", defaults.image_project),
            image_family=_get(e, "DD_GCP_IMAGE_FAMILY", defaults.image_family),
            network=_get(e, "DD_GCP_NETWORK", defaults.network),
            subnetwork=_get(e, "DD_GCP_SUBNETWORK", ""),
            service_account=_get(e, "DD_GCP_SERVICE_ACCOUNT", ""),
            disk_size_gb=_int(e, "DD_GCP_DISK_SIZE_GB", defaults.disk_size_gb),
            endpoint=_get(e, "DD_GCE_ENDPOINT", ""),
            credentials_file=_get(e, "DD_GCP_CREDENTIALS_FILE", ""),
            secret_manager_endpoint=_get(e, "DD_SECRET_MANAGER_ENDPOINT", ""),
            anonymous=_bool(e, "DD_GCE_ANONYMOUS", False),
            ttl_grace_seconds=_int(e, "DD_GCE_TTL_GRACE_SECONDS", defaults.ttl_grace_seconds),
            zone_cooldown_seconds=_int(
                e, "DD_GCE_ZONE_COOLDOWN_SECONDS", defaults.zone_cooldown_seconds
            ),
            request_timeout_seconds=_int(
                e, "DD_GCE_REQUEST_TIMEOUT_SECONDS", defaults.request_timeout_seconds
            ),
        )
        rdefaults = ReaperSettings()
        return cls(
            cluster_id=cluster_id,
            domain=_get(e, "DD_DOMAIN", "preview.localhost"),
            edge=edge,
            control_plane_port=_int(e, "DD_CONTROL_PLANE_PORT", 8080),
            health_checks=_int(e, "DD_HEALTH_CHECKS", 3),
            require_tdx=_bool(e, "DD_REQUIRE_TDX", False),
            expected_mrtd=_get(e, "DD_EXPECTED_MRTD", "").lower(),
            edge_recheck_seconds=_int(e, "DD_EDGE_RECHECK_SECONDS", 300),
            local=LocalSettings(
                state_dir=Path(_get(e, "DD_LOCAL_STATE_DIR", str(state_home / "dd-preview")))
            ),
            gce=gce,
            cloudflare=cf,
            github=GitHubSettings(
                token=_get(e, "DD_GITHUB_TOKEN", ""),
                api_url=_get(e, "DD_GITHUB_API", "https://api.github.com").rstrip("/"),
            ),
            reaper=ReaperSettings(
                interval_seconds=_int(e, "DD_REAPER_INTERVAL_SECONDS", rdefaults.interval_seconds),
                dry_run=_bool(e, "DD_REAPER_DRY_RUN", rdefaults.dry_run),
                min_age_seconds=_int(e, "DD_REAPER_MIN_AGE_SECONDS", rdefaults.min_age_seconds),
                max_deletions=_int(e, "DD_REAPER_MAX_DELETIONS", rdefaults.max_deletions),
                expiry_warning_seconds=_int(
                    e, "DD_EXPIRY_WARNING_SECONDS", rdefaults.expiry_warning_seconds
                ),
                lease_namespace=_get(e, "DD_OPERATOR_NAMESPACE", rdefaults.lease_namespace),
                lease_seconds=_int(e, "DD_REAPER_LEASE_SECONDS", rdefaults.lease_seconds),
            ),
            health=HealthSettings(
                metrics_host=_get(e, "DD_METRICS_HOST", HealthSettings.metrics_host),
                metrics_port=_int(e, "DD_METRICS_PORT", HealthSettings.metrics_port),
            ),
        )
