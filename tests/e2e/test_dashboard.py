"""The dashboard in real Chromium against the dev platform (gateway serving ui_dist, operator,
control plane): what an owner, a second owner and the platform owner see and can do."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.testing import samples
from exocorp.testing.dev import OWNER_EMAIL, DevPlatform
from tests.plugins.browser import axe_violations, base_url, in_thread, new_context, screenshot

pytestmark = pytest.mark.e2e
CANARY = "sk-ui-canary-7f3e1d2c"
RUNNING_WITHIN = 180_000
PASSWORD = "correct horse battery"
NEW_PASSWORD = "a fresh and longer passphrase"


def publish(platform: DevPlatform, version: str) -> None:
    async def apply() -> None:
        async with await Kube.connect(platform.plane.kubeconfig) as kube:
            await kube.apply(r.RELEASES, samples.release(version))
    in_thread(apply)


def hero_phase(page: Page) -> Locator:
    return page.locator(".hero .badge").first


def signup(page: Page, email: str, password: str = PASSWORD) -> str:
    page.goto("/signup")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
    kit = page.get_by_test_id("recovery-kit")
    expect(kit).to_have_text(re.compile(r"^EXO-"))
    screenshot(page, "signup-recovery-kit")
    text = kit.inner_text()
    continue_button = page.get_by_role("button", name="Continue to my exocorps")
    expect(continue_button).to_be_disabled()
    page.get_by_label("I have saved my recovery kit").check()
    continue_button.click()
    expect(page.get_by_role("heading", name="Your exocorps")).to_be_visible()
    return text


def account_loaded(page: Page) -> None:
    """The account page has what it reads on screen (its limits, balance, credentials and
    agents), so nothing re-renders under the next click."""
    expect(page.get_by_role("heading", name="Limits")).to_be_visible()
    expect(page.get_by_text("Balance:")).to_be_visible()
    expect(page.locator("#credentials").get_by_text(
        re.compile("No credential yet|Fingerprint"))).to_be_visible()
    expect(page.locator("#agents").get_by_text(
        re.compile("No agent connected|Last used"))).to_be_visible()


def add_credential(page: Page, value: str = CANARY) -> None:
    page.get_by_role("link", name="Account").click()
    account_loaded(page)
    page.get_by_role("button", name="Add credential").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Provider").fill("anthropic")
    dialog.get_by_label("Name").fill("main")
    dialog.get_by_label("Value").fill(value)
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_role("cell", name="main", exact=True)).to_be_visible()


def create_company(page: Page, slug: str, name: str) -> None:
    page.get_by_role("link", name="Exocorps").click()
    page.get_by_role("button", name="Create exocorp").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_label("Slug").fill(slug)
    dialog.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(hero_phase(page)).to_have_text("Draft")


def owner_of_new_company(page: Page, prefix: str, name: str) -> str:
    """Sign up a new owner on ``page`` and create a company ``name`` (slug ``prefix-…``);
    returns the slug."""
    signup(page, f"{prefix}-owner-{uuid.uuid4().hex[:6]}@example.com")
    slug = f"{prefix}-{uuid.uuid4().hex[:6]}"
    create_company(page, slug, name)
    return slug


def act(page: Page, action: str, *, reason: str | None = None, confirm: str | None = None,
        choose: tuple[str, str] | None = None) -> None:
    """Press an action button; fill its dialog when it has one."""
    page.locator(f"button[data-action={action}]").click()
    if reason is None and confirm is None and choose is None:
        return
    dialog = page.get_by_role("dialog")
    if choose:
        dialog.get_by_label(choose[0]).select_option(choose[1])
    if reason is not None:
        dialog.get_by_label(re.compile("^Reason")).fill(reason)
    if confirm is not None:
        dialog.get_by_label(re.compile("^Type the slug")).fill(confirm)
    dialog.locator("button[type=submit]").click()
    expect(dialog).to_have_count(0)


def test_owner_journey_from_signup_to_destroy(dashboard_platform: DevPlatform, page: Page) -> None:
    publish(dashboard_platform, "1.1.0")
    email = f"owner-{uuid.uuid4().hex[:6]}@example.com"
    signup(page, email)
    screenshot(page, "fleet-empty")
    # Marks this document: a reload or a full navigation would lose it.
    page.evaluate("window.__sameDocument = true")
    add_credential(page)
    screenshot(page, "account")
    slug = f"journey-{uuid.uuid4().hex[:6]}"
    create_company(page, slug, "Journey Corp")
    expect(page.get_by_text(re.compile(r"^Draft version \d+, saved"))).to_be_visible()
    # The draft the create form wrote pins the current stable release at the time, 1.1.0;
    # choose 1.0.0 in the editor so that there is an update to make later.
    page.get_by_label("Version").select_option("1.0.0")
    # A field the API refuses is marked at the field, with the API's message, and nothing saved.
    name = page.get_by_label("Agent 1 name")
    name.fill("Not A Valid Name")
    page.get_by_role("button", name="Save configuration").click()
    expect(page.locator(".agent-row .has-error .field-error")).to_be_visible()
    expect(name).to_have_attribute("aria-invalid", "true")
    name.fill("ceo")
    page.get_by_role("button", name="Save configuration").click()
    expect(page.get_by_text("Saved (version")).to_be_visible()
    screenshot(page, "company-draft")

    act(page, "provision")
    expect(hero_phase(page)).to_have_text("Running", timeout=RUNNING_WITHIN)
    expect(page.locator("dd").first).to_contain_text("1.0.0")
    screenshot(page, "company-running")

    act(page, "update", choose=("Version", "1.1.0"))
    expect(page.locator("dd").first).to_contain_text("1.1.0 (Installed)", timeout=RUNNING_WITHIN)
    expect(hero_phase(page)).to_have_text("Running", timeout=RUNNING_WITHIN)

    act(page, "rollback", reason="back to the known good one")
    expect(page.locator("dd").first).to_contain_text("1.0.0 (Installed)", timeout=RUNNING_WITHIN)
    expect(hero_phase(page)).to_have_text("Running", timeout=RUNNING_WITHIN)

    # Pause needs a reason: the dialog's button stays disabled without one.
    page.locator("button[data-action=pause]").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("button[type=submit]")).to_be_disabled()
    dialog.get_by_role("button", name="Cancel").click()
    act(page, "pause", reason="maintenance window")
    expect(hero_phase(page)).to_have_text("Paused", timeout=RUNNING_WITHIN)
    expect(page.get_by_text("Paused because: maintenance window")).to_be_visible()
    # A refused action says why, in the API's words.
    expect(page.locator("button[data-action=pause]")).to_be_disabled()
    screenshot(page, "company-paused")

    act(page, "resume")
    expect(hero_phase(page)).to_have_text("Running", timeout=RUNNING_WITHIN)

    # Destructive actions need the slug typed: a wrong one keeps the button disabled.
    page.locator("button[data-action=stop]").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label(re.compile("^Type the slug")).fill("not-the-slug")
    expect(dialog.locator("button[type=submit]")).to_be_disabled()
    dialog.get_by_role("button", name="Cancel").click()
    act(page, "stop", confirm=slug)
    expect(hero_phase(page)).to_have_text("Stopped", timeout=RUNNING_WITHIN)

    act(page, "destroy", confirm=slug)
    expect(page.get_by_text("does not exist (any more)")).to_be_visible(timeout=RUNNING_WITHIN)
    assert page.evaluate("window.__sameDocument") is True
    assert CANARY not in page.content()


def test_second_owner_sees_none_of_the_first_ones_and_no_admin(
        dashboard_platform: DevPlatform, browser: Browser, context: BrowserContext) -> None:
    first = context.new_page()
    slug = owner_of_new_company(first, "private", "Private Corp")

    other = new_context(browser, dashboard_platform)
    try:
        second = other.new_page()
        signup(second, f"second-{uuid.uuid4().hex[:6]}@example.com")
        expect(second.get_by_text("Start your first exocorp")).to_be_visible()
        expect(second.get_by_text("Private Corp")).to_have_count(0)
        second.goto(f"/company/{slug}")
        expect(second.get_by_text("does not exist (any more), or it is not yours")).to_be_visible()
        expect(second.get_by_role("link", name="Admin")).to_have_count(0)
        second.goto("/admin/companies")
        expect(second.get_by_role("heading", name="Page not found")).to_be_visible()
        expect(second.get_by_text("Private Corp")).to_have_count(0)
    finally:
        other.close()


def test_an_owner_shares_an_exocorp_with_a_colleague_and_takes_it_back(
        dashboard_platform: DevPlatform, browser: Browser, context: BrowserContext) -> None:
    owner = context.new_page()
    owner_of_new_company(owner, "shared", "Shared Corp")
    colleague_email = f"colleague-{uuid.uuid4().hex[:6]}@example.com"
    owner.get_by_label("Invite by e-mail").fill(colleague_email)
    owner.get_by_role("button", name="Invite", exact=True).click()
    expect(owner.get_by_text(f"Invited {colleague_email} as member.")).to_be_visible()
    expect(owner.get_by_role("button", name=f"Revoke invitation of {colleague_email}")) \
        .to_be_visible()

    other = new_context(browser, dashboard_platform)
    try:
        colleague = other.new_page()
        signup(colleague, colleague_email)  # the invitation waits for the address
        colleague.get_by_role("button", name="Accept Shared Corp").click()
        colleague.get_by_role("link", name="Shared Corp").click()
        people = colleague.locator("section[aria-labelledby=h-members]")
        expect(people.get_by_role("row", name=re.compile(f"{colleague_email} \\(you\\) member"))) \
            .to_be_visible()
        expect(colleague.get_by_label("Invite by e-mail")).to_have_count(0)  # owners invite

        owner.reload()
        owner.get_by_label(f"Role of {colleague_email}").select_option("viewer")
        expect(owner.get_by_text(f"{colleague_email} is now viewer.")).to_be_visible()
        colleague.reload()
        expect(people.get_by_role("row", name=re.compile(f"{colleague_email} \\(you\\) viewer"))) \
            .to_be_visible()
        screenshot(owner, "company-people")

        owner.get_by_role("button", name=f"Remove {colleague_email}").click()
        expect(owner.get_by_text(f"{colleague_email} no longer works on this exocorp.")) \
            .to_be_visible()
        colleague.reload()
        expect(colleague.get_by_text("does not exist (any more), or it is not yours")) \
            .to_be_visible()
    finally:
        other.close()


def test_an_owner_previews_the_manifest_and_a_member_has_no_such_button(
        dashboard_platform: DevPlatform, browser: Browser, context: BrowserContext) -> None:
    owner = context.new_page()
    owner_of_new_company(owner, "preview", "Preview Corp")  # the create form saves a draft
    config = owner.locator("section[aria-labelledby=h-config]")
    config.get_by_role("button", name="Preview manifest").click()
    dialog = owner.get_by_role("dialog", name="Effective manifest")
    manifest = dialog.get_by_test_id("manifest-yaml")
    expect(manifest).to_contain_text("kind: Deployment")
    expect(manifest).to_contain_text("kind: NetworkPolicy")
    expect(dialog.get_by_role("button", name="Copy")).to_be_enabled()
    screenshot(owner, "company-manifest")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)

    member_email = f"member-{uuid.uuid4().hex[:6]}@example.com"
    owner.get_by_label("Invite by e-mail").fill(member_email)
    owner.get_by_role("button", name="Invite", exact=True).click()
    expect(owner.get_by_text(f"Invited {member_email} as member.")).to_be_visible()
    other = new_context(browser, dashboard_platform)
    try:
        member = other.new_page()
        signup(member, member_email)
        member.get_by_role("button", name="Accept Preview Corp").click()
        member.get_by_role("link", name="Preview Corp").click()
        expect(member.get_by_role("heading", name="Configuration")).to_be_visible()
        expect(member.get_by_role("button", name="Preview manifest")).to_have_count(0)
    finally:
        other.close()


def login(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Your exocorps")).to_be_visible()


def test_wrong_password_and_session_expiry_bring_the_user_back(
        dashboard_platform: DevPlatform, page: Page) -> None:
    email = f"back-{uuid.uuid4().hex[:6]}@example.com"
    signup(page, email)
    page.get_by_role("link", name="Account").click()
    account_loaded(page)  # else one of its own reads meets the ended session
    # The session ends on the server (logout from elsewhere): the next call sends the user to
    # the login page, and logging in brings them back to the page they were on.
    page.request.post("/api/auth/logout")
    page.get_by_role("button", name="Add credential").click()
    page.get_by_role("dialog").get_by_label("Value").fill("x")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your session has ended")).to_be_visible()
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill("wrong password!!")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Wrong e-mail or password.")).to_be_visible()
    screenshot(page, "login-error")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Account")).to_be_visible()
    assert page.url.endswith("/account")


def test_platform_owner_uses_the_admin_pages(dashboard_platform: DevPlatform, page: Page) -> None:
    owner_page = page
    signup(owner_page, f"tenant-{uuid.uuid4().hex[:6]}@example.com")
    add_credential(owner_page)
    slug = f"tenant-{uuid.uuid4().hex[:6]}"
    create_company(owner_page, slug, "Tenant Corp")
    owner_page.get_by_role("button", name="Log out").click()

    password = (dashboard_platform.workdir / "platform-owner.password").read_text()
    login(owner_page, OWNER_EMAIL, password)
    owner_page.get_by_role("link", name="Admin").click()
    expect(owner_page.get_by_role("heading", name="Platform overview")).to_be_visible()
    expect(owner_page.get_by_role("heading", name="Newest audit events")).to_be_visible()
    screenshot(owner_page, "admin")

    owner_page.get_by_role("navigation", name="Admin").get_by_role("link", name="Companies").click()
    row = owner_page.locator(f"tr[data-company='{slug}']")
    expect(row).to_contain_text("Tenant Corp")
    screenshot(owner_page, "admin-companies")
    # From the table: provision the tenant's draft; the row follows to a provisioning phase.
    row.locator("button[data-action=provision]").click()
    expect(row.locator(".badge")).not_to_have_text("Draft", timeout=30_000)

    owner_page.get_by_role("navigation", name="Admin").get_by_role("link", name="Billing").click()
    expect(owner_page.get_by_role("heading", name="Accounts")).to_be_visible()
    screenshot(owner_page, "admin-billing")

    owner_page.get_by_role("navigation", name="Admin").get_by_role("link", name="Audit").click()
    owner_page.get_by_label("Exocorp").fill(slug)
    owner_page.get_by_role("button", name="Filter").click()
    expect(owner_page.get_by_role("cell", name="provision").first).to_be_visible()
    screenshot(owner_page, "admin-audit")


def test_a_recovery_kit_login_sets_a_new_password_before_anything_else(
        dashboard_platform: DevPlatform, page: Page) -> None:
    email = f"kit-{uuid.uuid4().hex[:6]}@example.com"
    kit = signup(page, email)
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to Exocorp")).to_be_visible()
    page.get_by_label("E-mail").fill(email)
    page.get_by_role("button", name="Use my recovery kit instead").click()
    page.get_by_label("Recovery kit").fill(kit)
    page.get_by_role("button", name="Log in").click()
    # The used kit is spent: a new one is shown, once.
    expect(page.get_by_role("heading", name="Your new recovery kit")).to_be_visible()
    expect(page.get_by_test_id("recovery-kit")).to_have_text(re.compile(r"^EXO-"))
    expect(page.get_by_test_id("recovery-kit")).not_to_have_text(kit)
    page.get_by_role("button", name="Continue").click()

    # Only the password page: no navigation, no current password asked, no other page.
    expect(page.get_by_role("heading", name="Set a new password")).to_be_visible()
    assert page.url.endswith("/password")
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    expect(page.get_by_label("Current password")).to_have_count(0)
    screenshot(page, "password-forced")
    page.goto("/account")
    expect(page.get_by_role("heading", name="Set a new password")).to_be_visible()
    expect(page.get_by_role("heading", name="Account")).to_have_count(0)
    assert page.url.endswith("/password")

    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save the new password").click()
    expect(page.get_by_role("heading", name="Your exocorps")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    login(page, email, NEW_PASSWORD)


def test_sign_out_everywhere_ends_this_session_too(dashboard_platform: DevPlatform,
                                                   page: Page) -> None:
    email = f"leave-{uuid.uuid4().hex[:6]}@example.com"
    signup(page, email)
    page.get_by_role("link", name="Account").click()
    limits = page.get_by_role("region", name="Limits")
    expect(limits).to_contain_text("0 exocorps (no limit)")
    page.get_by_role("button", name="Sign out everywhere").click()
    page.get_by_role("dialog").get_by_role("button", name="Sign out everywhere").click()
    expect(page.get_by_role("heading", name="Log in to Exocorp")).to_be_visible()
    page.goto("/account")
    expect(page.get_by_role("heading", name="Log in to Exocorp")).to_be_visible()
    login(page, email, PASSWORD)


def test_platform_owner_limits_exocorps_and_disables_a_user(
        dashboard_platform: DevPlatform, browser: Browser, page: Page) -> None:
    password = (dashboard_platform.workdir / "platform-owner.password").read_text()
    login(page, OWNER_EMAIL, password)
    page.get_by_role("link", name="Admin").click()
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Limits").click()
    expect(page.get_by_role("heading", name="Limits", exact=True)).to_be_visible()
    default = page.get_by_role("region", name="Default per account")
    now = default.get_by_test_id("limits-default")
    tenant_context = new_context(browser, dashboard_platform)
    try:
        expect(now).to_have_text("Now: No limit.")
        # A malformed quantity is refused at its field, and nothing changes.
        cpu = default.get_by_label("Most CPU")
        cpu.fill("lots")
        default.get_by_role("button", name="Save limits").click()
        expect(cpu).to_have_attribute("aria-invalid", "true")
        expect(default.locator(".field-error")).to_have_text(re.compile("^Not a quantity"))
        page.reload()
        expect(now).to_have_text("Now: No limit.")

        default.get_by_label("Most exocorps").fill("1")
        default.get_by_role("button", name="Save limits").click()
        expect(now).to_have_text("Now: At most 1 exocorps.")
        screenshot(page, "admin-limits")

        tenant = tenant_context.new_page()
        email = f"limited-{uuid.uuid4().hex[:6]}@example.com"
        signup(tenant, email)
        create_company(tenant, f"only-{uuid.uuid4().hex[:6]}", "Only Corp")
        tenant.get_by_role("link", name="Account").click()
        expect(tenant.get_by_role("region", name="Limits")).to_contain_text("1 of 1 exocorps")
        tenant.get_by_role("link", name="Exocorps").click()
        tenant.get_by_role("button", name="Create exocorp").first.click()
        dialog = tenant.get_by_role("dialog")
        dialog.get_by_label("Name").fill("Second Corp")
        dialog.get_by_role("button", name="Create").click()
        expect(dialog.get_by_role("alert")).to_contain_text(
            "this account may own at most 1 exocorps")
        screenshot(tenant, "create-refused-by-limit")
        dialog.get_by_role("button", name="Cancel").click()
        expect(tenant.get_by_text("Second Corp")).to_have_count(0)

        page.get_by_role("navigation", name="Admin").get_by_role("link", name="Billing").click()
        row = page.get_by_role("row", name=re.compile(re.escape(email)))
        expect(row).to_contain_text("1 of 1 exocorps")
        row.get_by_role("button", name=f"Disable {email}").click()
        page.get_by_role("dialog").get_by_role("button", name="Disable").click()
        expect(row.get_by_role("button", name=f"Enable {email}")).to_be_visible()
        expect(row).to_contain_text("disabled")

        # The tenant's session is over (an open page may notice first, from its live stream):
        # the next page they open is the login page, and their password no longer logs them in.
        tenant.goto("/account")
        expect(tenant.get_by_role("heading", name="Log in to Exocorp")).to_be_visible()
        expect(tenant.get_by_text("Your session has ended")).to_be_visible()
        tenant.get_by_label("E-mail").fill(email)
        tenant.get_by_label("Password").fill(PASSWORD)
        tenant.get_by_role("button", name="Log in").click()
        expect(tenant.get_by_role("alert")).to_contain_text("this account is disabled")

        row.get_by_role("button", name=f"Enable {email}").click()
        expect(row.get_by_role("button", name=f"Disable {email}")).to_be_visible()
        tenant.get_by_role("button", name="Log in").click()
        expect(tenant.get_by_role("heading", name="Account")).to_be_visible()
    finally:
        tenant_context.close()
        # The platform is shared by this module's tests: lift the default limit again.
        assert page.request.put("/api/admin/limits/default", data={}).ok


def test_agent_handoff_approved_in_the_browser(dashboard_platform: DevPlatform, page: Page) -> None:
    url = base_url(dashboard_platform)
    email = f"agent-owner-{uuid.uuid4().hex[:6]}@example.com"
    signup(page, email)
    slug = f"agent-{uuid.uuid4().hex[:6]}"
    body = json.dumps({"agentName": "test-agent",
                       "company": {"slug": slug, "displayName": "Agent Corp"},
                       "draft": samples.draft("1.0.0")}).encode()
    request = urllib.request.Request(f"{url}/api/agents/drafts", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        asked = json.loads(answer.read())
    page.goto(asked["handoffUrl"])
    expect(page.get_by_text("test-agent")).to_be_visible()
    screenshot(page, "connect-agent")
    page.get_by_label("Pairing code").fill(asked["pairingCode"])
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#status")).to_have_text("approved")

    redeem = urllib.request.Request(f"{url}/api/agents/redeem", data=b"{}", method="POST",
                                    headers={"Content-Type": "application/json",
                                             "Authorization": f"Bearer {asked['draftToken']}"})
    with urllib.request.urlopen(redeem) as answer:
        token = json.loads(answer.read())["token"]
    mine = urllib.request.Request(f"{url}/api/registry/my-companies",
                                  headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(mine) as answer:
        assert slug in {c["id"] for c in json.loads(answer.read())["companies"]}

    page.goto("/account")
    expect(page.get_by_role("cell", name="test-agent", exact=True)).to_be_visible()
    screenshot(page, "account-agents")
    page.get_by_role("button", name="Revoke test-agent").click()
    expect(page.get_by_role("cell", name="revoked")).to_be_visible()


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches `selector` (keyboard-only use)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)",
                         selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def wait_until(page: Page, predicate: str) -> None:
    """Wait until `predicate` (an arrow function) holds in the page.

    It must be a function, not an expression: Playwright evals an expression again on every
    poll, and the dashboard's CSP (no 'unsafe-eval') blocks every eval after the first.
    """
    page.wait_for_function(predicate)


def focus_in_dialog(page: Page) -> None:
    try:
        wait_until(page, "() => !!document.activeElement?.closest('dialog[open]')")
    except PlaywrightTimeoutError:
        # What the page looked like, to tell a dialog that never opened from a lost keypress.
        state = page.evaluate("""() => ({
            active: document.activeElement?.outerHTML?.slice(0, 300),
            dialogs: document.querySelectorAll('dialog').length,
            buttons: [...document.querySelectorAll('button[data-action]')].map(
                b => `${b.dataset.action}:${b.disabled ? 'disabled' : 'enabled'}:${b.title}`),
            phase: document.querySelector('.hero .badge')?.textContent,
            alerts: [...document.querySelectorAll('[role=alert]')].map(a => a.textContent),
        })""")
        raise AssertionError(f"the focus never went into a dialog; the page: {state}") from None


def test_keyboard_only_owner_journey(dashboard_platform: DevPlatform, page: Page) -> None:
    page.goto("/signup")
    tab_to(page, "input[type=email]")
    page.keyboard.type(f"keys-{uuid.uuid4().hex[:6]}@example.com")
    tab_to(page, "input[type=password]")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("recovery-kit")).to_be_visible()
    tab_to(page, "input[type=checkbox]")
    page.keyboard.press("Space")
    tab_to(page, "button.primary")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your exocorps")).to_be_visible()

    tab_to(page, "a[href='/account']")
    page.keyboard.press("Enter")
    tab_to(page, "#credentials button.primary")
    page.keyboard.press("Enter")
    focus_in_dialog(page)
    # The dialog takes the focus; fields in order: provider, name, value.
    for _ in range(2):
        page.keyboard.press("Tab")
    page.keyboard.type("sk-keyboard-only")
    page.keyboard.press("Enter")
    expect(page.get_by_role("cell", name="main", exact=True)).to_be_visible()

    tab_to(page, "a[href='/']")
    page.keyboard.press("Enter")
    tab_to(page, ".page-head button.primary")
    page.keyboard.press("Enter")
    focus_in_dialog(page)
    slug = f"keys-{uuid.uuid4().hex[:6]}"
    page.keyboard.type("Keys Corp")
    page.keyboard.press("Tab")
    page.keyboard.press("Control+A")
    page.keyboard.type(slug)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Keys Corp")).to_be_visible()

    tab_to(page, "button[data-action=provision]")
    page.keyboard.press("Enter")
    expect(hero_phase(page)).to_have_text("Running", timeout=RUNNING_WITHIN)
    tab_to(page, "button[data-action=pause]")
    page.keyboard.press("Enter")
    # Escape closes the dialog and gives the focus back to the button that opened it.
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    wait_until(page, "() => document.activeElement?.dataset.action === 'pause'")
    page.keyboard.press("Enter")
    focus_in_dialog(page)
    page.keyboard.type("keyboard pause")  # the reason field has the focus
    page.keyboard.press("Enter")
    expect(hero_phase(page)).to_have_text("Paused", timeout=RUNNING_WITHIN)


def test_a_dialog_opened_again_at_once_after_escape_stays_open(dashboard_platform: DevPlatform,
                                                               page: Page) -> None:
    """Escape, then Enter on the button at once (a quick keyboard user; CI met it on a busy
    machine): the first dialog's ``close`` event, queued when it was taken down, arrives after
    the second dialog opened. It must not close the second one."""
    owner_of_new_company(page, "reopen", "Reopen Corp")
    opened_again = page.evaluate("""async () => {
        const settle = () => new Promise((done) => setTimeout(done, 100));
        const button = document.querySelector('button[data-action=destroy]');
        button.click();
        await settle();
        const first = document.querySelector('dialog[open]');
        if (!first) return 'the first dialog did not open';
        first.dispatchEvent(new Event('cancel'));  // what Escape fires
        await Promise.resolve();  // the dashboard takes the dialog down (its close event queues)
        button.click();  // the keyboard user's Enter, before that event's turn
        await settle();
        return document.querySelector('dialog[open]') ? 'open' : 'closed';
    }""")
    assert opened_again == "open"


def test_no_serious_accessibility_violation_on_any_page(
        dashboard_platform: DevPlatform, browser: Browser) -> None:
    # axe is injected as a script, which the dashboard's CSP forbids: this context bypasses it.
    ctx = new_context(browser, dashboard_platform, bypass_csp=True)
    try:
        page = ctx.new_page()
        found: dict[str, object] = {}

        def check(name: str) -> None:
            # Not "networkidle": the pages hold their live event stream open.
            page.wait_for_load_state("load")
            expect(page.locator("main h1").first).to_be_visible()
            violations = axe_violations(page)
            if violations:
                found[name] = violations

        page.goto("/login")
        check("login")
        screenshot(page, "login")
        page.goto("/signup")
        check("signup")
        screenshot(page, "signup")
        signup(page, f"axe-{uuid.uuid4().hex[:6]}@example.com")
        check("fleet-empty")
        page.get_by_role("link", name="Account").click()
        expect(page.get_by_role("region", name="Limits")).to_be_visible()
        check("account")
        page.get_by_role("link", name="Change your password").click()
        check("password")
        slug = f"axe-{uuid.uuid4().hex[:6]}"
        create_company(page, slug, "Axe Corp")
        check("company")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Exocorps").click()
        expect(page.locator(f"tr[data-company='{slug}']")).to_be_visible()
        check("fleet")
        screenshot(page, "fleet")
        page.get_by_role("button", name="Log out").click()
        password = (dashboard_platform.workdir / "platform-owner.password").read_text()
        login(page, OWNER_EMAIL, password)
        for path in ("/admin", "/admin/companies", "/admin/billing", "/admin/limits",
                     "/admin/audit"):
            page.goto(path)
            # Pages whose controls come with an answer: check those controls too.
            if path == "/admin/billing":
                expect(page.get_by_role("button", name=re.compile("^Disable ")).first) \
                    .to_be_visible()
            if path == "/admin/limits":
                expect(page.get_by_role("button", name="Save limits").first).to_be_visible()
            check(path)
        assert found == {}
    finally:
        ctx.close()


def test_live_stream_survives_a_gateway_restart(dashboard_platform: DevPlatform,
                                                page: Page) -> None:
    slug = owner_of_new_company(page, "restart", "Restart Corp")
    page.evaluate("window.__sameDocument = true")
    live = page.locator(".hero .live")
    expect(live).to_have_text("Live")

    gateway = dashboard_platform.gateway
    assert gateway is not None
    gateway.stop()
    expect(live).to_have_text("Reconnecting…")
    gateway.start()
    expect(live).to_have_text("Live", timeout=30_000)
    # A change after the restart reaches the open page over the new stream.
    assert page.request.post("/api/registry/provider-secrets", data={
        "provider": "anthropic", "name": "main", "value": "sk-restart"}).ok
    assert page.request.post(f"/api/registry/companies/{slug}/provision", data={}).ok
    expect(hero_phase(page)).not_to_have_text("Draft", timeout=30_000)
    assert page.evaluate("window.__sameDocument") is True
