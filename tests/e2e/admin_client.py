"""An admin's browser, as the API sees it: cookies, Origin and the CSRF header."""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "vivid-otter-maps-42"  # not among the common passwords


class AdminClient:
    def __init__(self, base_url: str, origin: str | None = None) -> None:
        self.base_url = base_url
        self.http = httpx.Client(
            base_url=base_url, headers={"Origin": origin or base_url}, timeout=30
        )
        self.csrf_token: str | None = None

    def fetch_csrf(self) -> str:
        self.csrf_token = self.http.get("/api/auth/csrf").json()["csrf_token"]
        return self.csrf_token

    def headers(self) -> dict[str, str]:
        if self.csrf_token is None:
            self.fetch_csrf()
        assert self.csrf_token is not None
        return {"X-CSRF-Token": self.csrf_token}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.http.request(method, path, json=body, headers=self.headers())

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.send("POST", path, body)

    def put(self, path: str, body: Any = None) -> httpx.Response:
        return self.send("PUT", path, body)

    def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        response = self.post("/api/auth/login", {"email": email, "password": password})
        if response.status_code == 200:
            self.csrf_token = response.json()["csrf_token"]
        return response

    def session_cookie(self) -> str | None:
        return self.http.cookies.get("archipel_session")

    def onboard(self, email: str = "alice@example.org", public_url: str | None = None) -> None:
        """Walk the whole wizard with the required steps, skipping the optional ones."""
        created = self.post(
            "/api/onboarding/admin",
            {"email": email, "display_name": "Alice Admin", "password": PASSWORD},
        )
        assert created.status_code == 201, created.text
        self.csrf_token = created.json()["session"]["csrf_token"]
        for path, body in (
            ("/api/onboarding/pool", {"pool_name": "paris-1", "site": "Paris"}),
            ("/api/onboarding/public-url", {"public_url": public_url or self.base_url}),
            ("/api/onboarding/identity", None),
            ("/api/onboarding/complete", None),
        ):
            response = self.post(path, body)
            assert response.status_code == 200, (path, response.text)

    def close(self) -> None:
        self.http.close()


@dataclass
class SseEvent:
    event: str
    id: str | None
    data: Any


class SseReader:
    """Reads an SSE stream in a thread; events arrive on `events`, `ended` when it closes."""

    def __init__(self, client: AdminClient, last_event_id: str | None = None) -> None:
        self.events: queue.Queue[SseEvent] = queue.Queue()
        self.ended = threading.Event()
        self.status: int | None = None
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self._http = httpx.Client(
            base_url=client.base_url,
            cookies=client.http.cookies,
            headers=headers,
            timeout=httpx.Timeout(30, read=60),
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._http.stream("GET", "/api/stream") as response:
                self.status = response.status_code
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if line.startswith(":"):
                        continue
                    if not line:
                        if "event" in fields or "data" in fields:
                            data = fields.get("data", "")
                            self.events.put(
                                SseEvent(
                                    fields.get("event", "message"),
                                    fields.get("id"),
                                    json.loads(data) if data else None,
                                )
                            )
                        fields = {}
                        continue
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def next(self, timeout: float = 10) -> SseEvent:
        return self.events.get(timeout=timeout)

    def wait_for(self, predicate: Any, timeout: float = 10) -> SseEvent:
        import time

        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("expected SSE event did not arrive")
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                raise AssertionError("expected SSE event did not arrive") from None
            if predicate(event):
                return event

    def close(self) -> None:
        self._http.close()
