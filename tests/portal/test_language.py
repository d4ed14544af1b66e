"""The portal speaks English and Simplified Chinese: the browser's language picks, the
switcher overrides, every string of the portal is translated, and the API stays English."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from django.test import Client

from tests.portal.conftest import Cast, client_for, post

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES"
PORTAL_TEMPLATES = [ROOT / "templates" / "developers", ROOT / "templates" / "registration"]
SIMPLE_TRANSLATE = re.compile(r"""{%\s*translate\s+"([^"]+)"\s*%}""")


def test_a_chinese_browser_gets_the_portal_in_chinese(db: None) -> None:
    page = Client().get("/login/", HTTP_ACCEPT_LANGUAGE="zh-Hans,zh;q=0.9,en;q=0.5")
    assert page["Content-Language"] == "zh-hans"
    assert '<html lang="zh-hans">' in page.content.decode()
    assert "登录" in page.content.decode()


def test_an_english_browser_gets_english(db: None) -> None:
    page = Client().get("/login/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    assert page["Content-Language"] == "en"
    assert "Log in" in page.content.decode()


def test_the_switcher_overrides_the_browser_and_is_remembered(cast: Cast) -> None:
    alice = client_for(cast.alice)
    switched = post(alice, "/i18n/setlang/", {"language": "zh-hans", "next": "/keys/"})
    assert switched.status_code == 302
    assert switched["Location"] == "/keys/"
    page = alice.get("/keys/", HTTP_ACCEPT_LANGUAGE="en")
    assert page["Content-Language"] == "zh-hans"
    assert "API 密钥" in page.content.decode()


def test_the_api_answers_in_english_whatever_the_browser_asks(db: None) -> None:
    answer = Client().get("/v1/accounts", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert answer.status_code == 401
    assert answer.json()["code"] == "authentication_required"
    assert answer.json()["title"].isascii()
    assert "Content-Language" not in answer


def test_every_message_of_the_catalogue_is_translated_and_compiled() -> None:
    with (CATALOGUE / "django.po").open("rb") as source:
        catalogue = read_po(source)
    untranslated = [m.id for m in catalogue if m.id and not m.string]
    fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
    assert untranslated == [] and fuzzy == []
    with (CATALOGUE / "django.mo").open("rb") as compiled_file:
        compiled = read_mo(compiled_file)

    def ids(messages: Catalog) -> set[object]:
        # Plural messages come back as lists from .mo files and tuples from .po files.
        return {tuple(m.id) if isinstance(m.id, list | tuple) else m.id for m in messages if m.id}

    assert ids(compiled) == ids(catalogue), "django.mo is stale: run `manage.py compilemessages`"


def test_every_simple_string_of_the_portal_templates_is_in_the_catalogue() -> None:
    with (CATALOGUE / "django.po").open("rb") as source:
        known = {m.id for m in read_po(source) if m.id}
    missing = {
        text
        for folder in PORTAL_TEMPLATES
        for template in folder.rglob("*.html")
        for text in SIMPLE_TRANSLATE.findall(template.read_text())
        if text not in known
    }
    assert missing == set(), "run `manage.py makemessages -l zh_Hans` and translate"
