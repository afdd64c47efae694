"""``Settings.from_env``: required variables, defaults, and refusals that name the variable."""

from __future__ import annotations

import base64

import pytest

from dd_controlplane.settings import ConfigError, Settings

BASE = {"DD_ENV": "pr-7", "DD_OWNER": "acme"}


def test_minimal_environment_gives_working_defaults() -> None:
    s = Settings.from_env(BASE)
    assert (s.bind, s.port) == ("0.0.0.0", 8080)
    assert s.github.api_url == "https://api.github.com"
    assert s.github.oauth_url == "https://github.com"
    assert s.oidc.issuer == "https://token.actions.githubusercontent.com"
    assert s.session.ephemeral and len(s.session.secret) == 32
    assert not s.github.oauth_enabled
    assert str(s.attestation.tsm_root) == "/sys/kernel/config/tsm/report"
    assert len(s.registration.static_key) == 32


@pytest.mark.parametrize("missing", ["DD_ENV", "DD_OWNER"])
def test_missing_required_variable_is_named(missing: str) -> None:
    env = dict(BASE)
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"DD_PORT": "eighty"}, "DD_PORT"),
        ({"DD_GITHUB_CLIENT_ID": "x"}, "DD_GITHUB_CLIENT_SECRET"),
        ({"DD_OIDC_OWNER_ID": "acme"}, "DD_OIDC_OWNER_ID"),
        ({"DD_SESSION_SECRET": "short"}, "DD_SESSION_SECRET"),
        ({"DD_NOISE_STATIC_KEY": base64.b64encode(b"x" * 31).decode()}, "DD_NOISE_STATIC_KEY"),
        ({"DD_AGENT_KEYS": "not base64!"}, "DD_AGENT_KEYS"),
        ({"DD_AGENT_TOFU": "maybe"}, "DD_AGENT_TOFU"),
        ({"DD_OWNER": "acme/dd"}, "DD_OWNER"),
    ],
)
def test_malformed_values_are_refused_naming_the_variable(
    extra: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env({**BASE, **extra})


def test_secrets_stay_out_of_repr() -> None:
    s = Settings.from_env(
        {
            **BASE,
            "DD_SESSION_SECRET": "x" * 40,
            "DD_ATTEST_TOKEN": "attest-secret",
            "DD_GITHUB_CLIENT_ID": "cid",
            "DD_GITHUB_CLIENT_SECRET": "oauth-secret",
        }
    )
    text = repr(s)
    for secret in ("x" * 40, "attest-secret", "oauth-secret"):
        assert secret not in text
    assert not s.session.ephemeral


def test_agent_keys_and_callback_default() -> None:
    keys = [base64.b64encode(bytes([i]) * 32).decode() for i in (1, 2)]
    s = Settings.from_env({**BASE, "DD_AGENT_KEYS": " , ".join(keys), "DD_HOSTNAME": "pr-7.x.com"})
    assert s.registration.agent_keys == frozenset({b"\x01" * 32, b"\x02" * 32})
    assert s.oauth_callback_url == "https://pr-7.x.com/auth/github/callback"
