"""In a real browser: the alert form previews the message as received while it is typed, with its SMS size."""

from __future__ import annotations

import pytest

from tests.pages.conftest import chromium, monkeypatch_module  # noqa: F401  (fixtures the browser needs)
from tests.pages.test_browser_alert_form import admin_page, open_add_form  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_typing_a_curly_quote_turns_the_sms_to_ucs2_and_names_it(admin_page, live_server):  # noqa: F811
    from playwright.sync_api import expect

    page = admin_page
    open_add_form(page, live_server.url)
    preview = page.locator("#message-preview")
    page.fill("#id_name", "Boiler")
    page.locator("#id_message").press_sequentially("Hi {{ contact.name }}, it's hot")
    expect(preview).to_contain_text("Hi Ada Lovelace, it's hot")
    expect(preview.locator(".sms-size")).to_contain_text("GSM-7 · 1 SMS")
    expect(preview.locator(".sms-warning")).to_have_count(0)

    page.locator("#id_message").press("End")
    page.locator("#id_message").press_sequentially(" \u2019")
    expect(preview.locator(".sms-size")).to_contain_text("UCS-2")
    expect(preview.locator(".sms-warning")).to_contain_text("right single quotation mark")
