"""The portal home's desk (FLOWS §3 step 5) clicked through in Chromium on a real node:
a new inquiry (sent with a double click) is listed once; a document request is listed; an
event staff created is applied to, listed and cancelled; an IC card is registered and
shown. Empty lists say so. In Japanese and in English; every page reached is checked at a
phone's size (tests/portal/phone_checks.py).
"""

from __future__ import annotations

import datetime
import secrets

import pytest
from playwright.sync_api import Page, expect

from tests.identity.nodeclient import Member
from tests.nodeproc import NodeProcess
from tests.portal.browser import Words, enrol, menu, shot
from tests.portal.test_family_pages import portal_sign_in
from tests.portal.test_member_pages import set_password

pytestmark = pytest.mark.slow

JST = datetime.timezone(datetime.timedelta(hours=9))


def create_event(node: NodeProcess) -> int:
    until = datetime.datetime.now(JST) + datetime.timedelta(hours=2)
    body = {
        "coop": "demo",
        "title": "新入生歓迎 食堂ツアー",
        "date": until.date().isoformat(),
        "place": "中央食堂",
        "capacity": 30,
        "apply_until": until.isoformat(),
    }
    status, created = node.request("POST", "/api/v1/staff/events", body)
    assert status == 201, created
    return int(created["event"]["event_id"])


def test_desk_inquiry_document_event_and_ic_card(page: Page, node: NodeProcess, lang: str) -> None:
    said = Words(lang)
    member = Member("desk")
    enrol(node, member)
    set_password(page, node, member)
    portal_sign_in(page, node, member)
    empty = said("表示するレコードはありません。", "No records to display.")
    expect(page.locator("#inquiry-list .empty")).to_have_text(empty)
    expect(page.locator("#document-list .empty")).to_have_text(empty)
    # The IC card block offers what the node does: online registration, reissue at the counter.
    expect(page.locator("#ic-card-link")).to_be_visible()
    expect(page.locator("#home-ic-card")).not_to_contain_text(
        said("登録・紛失時", "registered, and")
    )
    shot(page, "30-desk-home-empty")

    # お問合せ: a too-short question is refused next to its field; a double click sends one.
    menu(page, "#nav-inquiry")
    page.select_option("#f-category", "emoney")
    page.fill("#f-subject", "ミールプランについて")
    page.fill("#f-body", "短い")
    page.check("#f-answer_by-phone")
    page.click("#inquiry-send")
    expect(page.locator("#e-body")).to_be_visible()
    page.fill("#f-body", "ミールプランの一日の上限額を変えることはできますか。")
    shot(page, "31-desk-inquiry-new")
    page.dblclick("#inquiry-send")
    expect(page.locator("#desk-done")).to_have_text(
        said("お問合せを受け付けました。", "Your inquiry was received.")
    )
    expect(page.locator("#inquiry-list tbody tr[id^=inquiry-]")).to_have_count(1)
    expect(page.locator("#inquiry-list .status")).to_have_text(said("受付済", "Received"))
    expect(page.locator("#inquiry-list")).to_contain_text(said("電話", "Phone"))

    # 資料請求
    page.click("#document-new")
    page.check("#doc-kyosai-guide")
    shot(page, "32-desk-document-new")
    page.click("#document-send")
    expect(page.locator("#desk-done")).to_have_text(
        said("資料請求を受け付けました。", "Your request was received.")
    )
    expect(page.locator("#document-list tbody tr[id^=document-]")).to_have_count(1)
    expect(page.locator("#document-list")).to_contain_text(
        said("学生総合共済のご案内", "Student mutual aid (kyosai) guide")
    )
    expect(page.locator("#document-list")).to_contain_text(said("郵送", "Post"))

    # イベント申込: apply, listed, cancel.
    event_id = create_event(node)
    page.click("#event-new")
    page.click(f"#apply-{event_id}")
    expect(page.locator("#event-done")).to_have_text(
        said("イベントに申し込みました。", "You applied to the event.")
    )
    row = page.locator(f"#application-{event_id}")
    expect(row.locator(".status")).to_have_text(said("申込済", "Applied"))
    expect(row.locator(".attendance")).to_have_text(said("未確定", "Not recorded"))
    shot(page, "33-desk-event-applied")
    page.click(f"#cancel-{event_id}")
    expect(page.locator("#event-done")).to_have_text(
        said("イベントの申込を取り消しました。", "Your application was cancelled.")
    )
    expect(row.locator(".status")).to_have_text(said("取消済", "Cancelled"))
    page.goto("/portal/home")
    cancelled = said("取消済", "Cancelled")
    expect(page.locator(f"#application-{event_id} .status")).to_have_text(cancelled)

    # 学生証ICカード登録
    idm = secrets.token_hex(8)
    menu(page, "#nav-ic-card")
    expect(page.locator("#card-none")).to_be_visible()
    page.fill("#f-idm", "0123")
    page.click("#card-register")
    expect(page.locator("#e-idm")).to_be_visible()
    page.fill("#f-idm", idm)
    page.click("#card-register")
    expect(page.locator("#card-done")).to_have_text(
        said("カードを登録しました。", "Your card is registered.")
    )
    expect(page.locator("#card-active")).to_contain_text(f"…{idm[-4:]}")
    shot(page, "34-desk-ic-card")
    page.goto("/portal/home")
    expect(page.locator("#home-card-active")).to_contain_text(f"…{idm[-4:]}")
    expect(page.locator("#home-ic-card")).to_contain_text(said("窓口", "counter"))
    shot(page, "35-desk-home")
    status, card = node.request("GET", f"/api/v1/cards/{idm}")
    assert status == 200 and card["member_no"] == member.member_no
