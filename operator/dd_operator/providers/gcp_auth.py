"""Google Cloud credentials for the GCE and Secret Manager adapters, built one way.

Anonymous for the local fakes, a service-account key file (mounted from a Secret) when
configured, otherwise Application Default Credentials (workload identity in a cluster).
"""

from __future__ import annotations

from google.auth.credentials import AnonymousCredentials, Credentials
from google.oauth2 import service_account

from ..settings import GceSettings

__all__ = ["gcp_credentials"]


def gcp_credentials(settings: GceSettings, *, scope: str) -> Credentials | None:
    """None means ADC: the SDK finds them itself."""
    if settings.anonymous:
        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    if settings.credentials_file:
        creds: Credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            settings.credentials_file, scopes=[scope]
        )
        return creds
    return None
