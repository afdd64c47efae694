"""A real browser (Debian's chromium, driven by Playwright) through login, the live
dashboard and logout, against the control plane under Hypercorn and the fake GitHub.

Never ``playwright install``: the test uses /usr/bin/chromium and fails (not skips) when
it is missing, so a machine without it cannot pass silently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from dd_controlplane.agent import register
from dd_controlplane.app import create_app

from .conftest import AGENT_PRIVATE, MEMBER_TOKEN, SettingsFactory, key_b64
from .serving import served
from .test_register import AGENT_PUBLIC

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is required: apt-get install -y chromium"
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def base_url(make_settings: SettingsFactory) -> AsyncIterator[str]:
    settings = make_settings(
        DD_AGENT_KEYS=key_b64(AGENT_PUBLIC), DD_DEV_ATTESTATION="1", DD_DASHBOARD_REFRESH_SECONDS="1"
    )
    async with served(create_app(settings)) as url:
        yield url


def watch_console(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


@pytest.mark.browser
async def test_login_dashboard_live_refresh_and_logout(browser: Browser, base_url: str) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    problems = watch_console(page)

    await page.goto(f"{base_url}/")
    assert page.url == f"{base_url}/auth/pat?next=/"
    await page.fill("#pat", MEMBER_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}/")
    await expect(page.locator("#login")).to_have_text("alice")
    await expect(page.locator("#env")).to_have_text("pr-7")
    await expect(page.locator("#tee")).to_have_text("none-dev")

    cookie = next(c for c in await context.cookies() if c["name"] == "dd_session")
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True  # kept over http://127.0.0.1: a secure context
    assert cookie["sameSite"] == "Lax"
    assert not cookie["domain"].startswith(".")  # host-only
    assert await page.evaluate("document.cookie") == ""  # HttpOnly: invisible to scripts

    # live refresh: an agent registers while the page is open and appears without a reload
    await expect(page.locator("#agent-count")).to_have_text("0")
    ws_url = base_url.replace("http://", "ws://") + "/register"
    await register(ws_url, private_key=AGENT_PRIVATE, owner="acme", vm_name="browser-vm")
    await expect(page.locator("#agents")).to_contain_text("browser-vm", timeout=15_000)
    await expect(page.locator("#agent-count")).to_have_text("1")

    await page.click("#logout")
    await expect(page.locator("h1")).to_have_text("Logged out")
    await page.goto(f"{base_url}/")
    assert page.url == f"{base_url}/auth/pat?next=/"
    assert problems == []  # no CSP violations, no script errors, no external fetches
    await context.close()


@pytest.mark.browser
async def test_dashboard_fits_a_phone_screen(browser: Browser, base_url: str) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = await context.new_page()
    await page.goto(f"{base_url}/auth/pat?next=/")
    await page.fill("#pat", MEMBER_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url}/")
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await context.close()
