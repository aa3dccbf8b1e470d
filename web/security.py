"""Session cookies, CSRF tokens and the same-origin check.

Every browser gets a CSRF token bound to a cookie: before login an anonymous "pre-session"
cookie, after login the session cookie (a new id at every login). The token is an HMAC of
that cookie's value, so it proves the request was written by a page that could read our
responses, and nothing needs storing. State-changing requests must also carry a same-origin
`Origin`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response

from infrastructure.crypto import derive_key

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class CookiePolicy:
    secure: bool

    @property
    def session_name(self) -> str:
        return "__Host-archipel_session" if self.secure else "archipel_session"

    @property
    def pre_session_name(self) -> str:
        return "__Host-archipel_pre" if self.secure else "archipel_pre"

    def set(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="strict",
            secure=self.secure,
        )

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", httponly=True, samesite="strict", secure=self.secure)


def cookie_policy(public_url: str) -> CookiePolicy:
    return CookiePolicy(secure=urlsplit(public_url).scheme == "https")


class CsrfTokens:
    def __init__(self, master_key: bytes) -> None:
        self._key = derive_key(master_key, "csrf")

    def token_for(self, kind: str, cookie_value: str) -> str:
        mac = hmac.new(self._key, f"{kind}:{cookie_value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")

    def valid(self, kind: str, cookie_value: str, token: str) -> bool:
        return hmac.compare_digest(self.token_for(kind, cookie_value), token)


def new_pre_session_id() -> str:
    return secrets.token_urlsafe(32)


def request_origin(request: Request) -> str:
    """The origin this request was addressed to, as a browser on that page would send it."""
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def same_origin(request: Request, public_url: str) -> bool:
    sent = request.headers.get("origin")
    if sent is None:
        referer = request.headers.get("referer")
        if referer is None:
            return False
        sent = origin_of(referer)
    return sent in (request_origin(request), origin_of(public_url))
