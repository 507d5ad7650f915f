"""Signing in to the console of a server in membership mode (`TENANTGRAPH_ORG_MODE`): a
token without an org claim picks the org in the sign-in form; the role is the membership's,
and an org the user is not a member of is refused with the server's reason."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.async_api import Page, expect
from tests.api_fixtures import ADMIN_TOKEN, mint, start_api_server
from tests.servers import create_database


@dataclass(frozen=True)
class MembershipServer:
    url: str
    orgs: tuple[str, str, str]  # mia is a member of the first two (member, admin), not the third


@pytest.fixture(scope="module")
async def server(resources, api_env, tmp_path_factory) -> AsyncIterator[MembershipServer]:
    database = await create_database(resources.admin_conninfo, "console_membership")
    started = start_api_server(
        tmp_path_factory.mktemp("membership"),
        **{**api_env, "DATABASE_URL": database, "TENANTGRAPH_ORG_MODE": "membership"},
    )
    suffix = uuid.uuid4().hex[:6]
    orgs = (f"north-{suffix}", f"south-{suffix}", f"east-{suffix}")
    olga = {"Authorization": f"Bearer {mint(None, 'olga')}"}
    async with httpx.AsyncClient(base_url=started.url, timeout=30) as client:
        for org, role in zip(orgs, ("member", "admin", None), strict=True):
            made = await client.post(
                "/orgs",
                json={"org_id": org, "owner": "olga"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert made.status_code == 200, made.text
            if role is not None:
                joined = await client.put(
                    f"/orgs/{org}/members/mia",
                    json={"role": role},
                    headers={**olga, "X-Org-Id": org},
                )
                assert joined.status_code == 200, joined.text
    yield MembershipServer(started.url, orgs)
    started.terminate()


async def _sign_in(page: Page, credential: str, org: str | None) -> None:
    await page.fill("#sign-in input[name=credential]", credential)
    await page.fill("#sign-in input[name=org]", org or "")
    await page.click("#sign-in button[type=submit]")


async def test_a_member_of_two_orgs_picks_one_at_sign_in(page: Page, server: MembershipServer):
    north, south, east = server.orgs
    mia = mint(None, "mia")  # no org claim: the org is the X-Org-Id the form sends
    await page.goto(f"{server.url}/ui/")
    await _sign_in(page, mia, north)
    await expect(page.locator("#who .identity")).to_have_text(f"{north} · mia · member")
    assert await page.locator("#nav a[data-view=admin]").count() == 0
    await page.click("#sign-out")

    await _sign_in(page, mia, south)
    await expect(page.locator("#who .identity")).to_have_text(f"{south} · mia · admin")
    assert await page.locator("#nav a[data-view=admin]").count() == 1
    await page.click("#sign-out")

    # Not a member: the server's reason, and the form keeps the token for another org.
    await _sign_in(page, mia, east)
    await expect(page.locator("#sign-in .error")).to_have_text(
        "403: not a member of this organisation"
    )
    assert await page.locator("#sign-out").count() == 0
    assert await page.input_value("#sign-in input[name=credential]") == mia
    await page.fill("#sign-in input[name=org]", north)
    await page.click("#sign-in button[type=submit]")
    await expect(page.locator("#who .identity")).to_have_text(f"{north} · mia · member")


async def test_without_an_org_the_form_asks_for_one(page: Page, server: MembershipServer):
    north = server.orgs[0]
    await page.goto(f"{server.url}/ui/")
    await _sign_in(page, mint(None, "mia"), None)
    await expect(page.locator("#sign-in .error")).to_contain_text("X-Org-Id")
    org = page.locator("#sign-in input[name=org]")
    assert await org.get_attribute("required") is not None
    await org.fill(north)  # the token is still in the form
    await page.click("#sign-in button[type=submit]")
    await expect(page.locator("#who .identity")).to_have_text(f"{north} · mia · member")
