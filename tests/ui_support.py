"""Signing a `requests.Session` in to the dashboard as a browser would: the form's
token from its page, then the key posted with it."""

from __future__ import annotations

import re
from html import unescape

import requests

META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = META_CSRF.search(html)
    assert found, "the page carries no CSRF token"
    return unescape(found.group(1))


def sign_in(
    base: str, key: str, next_path: str = "/ui/"
) -> tuple[requests.Session, requests.Response]:
    """A browser-like session after posting the sign-in form, and the form's answer."""
    browser = requests.Session()
    form = browser.get(f"{base}/ui/sign-in?next={next_path}", timeout=10).text
    found = FORM_TOKEN.search(form)
    assert found, form[:500]
    response = browser.post(
        f"{base}/ui/sign-in",
        data={"key": key, "csrf_token": unescape(found.group(1)), "next": next_path},
        allow_redirects=False,
        timeout=10,
    )
    return browser, response


def signed_in(base: str, key: str) -> requests.Session:
    browser, response = sign_in(base, key)
    assert response.status_code == 303, response.text[:500]
    return browser
