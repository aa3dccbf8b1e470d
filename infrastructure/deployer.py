"""Putting a catalog model on an Ollama worker: push the blob, create, verify; or pull; delete.

Every step is idempotent (a blob already there is not sent again, creating an existing model
is harmless), so a retried deployment just finishes what the last attempt started.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from application.migrations import PlacementError
from domain.catalog import CatalogModel
from infrastructure.ollama_health import tls_context

PUSH_CHUNK = 1 << 20
TIMEOUT = httpx.Timeout(30.0, read=600.0)


class DeployError(PlacementError):
    """The worker refused or failed a step; the message says which and why."""


def _check(response: httpx.Response, step: str) -> None:
    if response.status_code >= 400:
        try:
            why = response.json().get("error", response.text)
        except ValueError:
            why = response.text
        raise DeployError(f"{step}: HTTP {response.status_code}: {str(why)[:300]}")


# Gets a model file this pool does not have: (digest, size, name, progress).
FetchMissing = Callable[[str, int, str, Callable[[int, int], None]], None]


class OllamaDeployer:
    def __init__(self, blob_path: Callable[[str], Path]) -> None:
        self._blob_path = blob_path
        # Set by the pool: a catalog satellite fetches files from its master.
        self.fetch_missing: FetchMissing | None = None

    def _client(self, url: str) -> httpx.Client:
        return httpx.Client(base_url=url, timeout=TIMEOUT, verify=tls_context())

    def push_and_create(
        self, url: str, reference: str, digest: str, progress: Callable[[int, int], None]
    ) -> None:
        """Send the GGUF blob (unless the worker has it), then create the model from it."""
        path = self._blob_path(digest)
        total = path.stat().st_size
        try:
            with self._client(url) as client:
                present = client.head(f"/api/blobs/{digest}")
                if present.status_code != 200:
                    sent = 0

                    def chunks() -> Iterator[bytes]:
                        nonlocal sent
                        with path.open("rb") as handle:
                            while chunk := handle.read(PUSH_CHUNK):
                                sent += len(chunk)
                                progress(sent, total)
                                yield chunk

                    _check(client.post(f"/api/blobs/{digest}", content=chunks()), "push blob")
                progress(total, total)
                created = client.post(
                    "/api/create",
                    json={
                        "model": reference,
                        "files": {f"{reference.replace(':', '-')}.gguf": digest},
                        "stream": False,
                    },
                )
                _check(created, "create")
                self._verify(client, reference)
        except httpx.HTTPError as error:
            raise DeployError(f"worker unreachable during deployment: {error}") from None

    def pull(self, url: str, reference: str, progress: Callable[[int, int], None]) -> None:
        """Have the worker pull a library model itself, following its progress."""
        try:
            with (
                self._client(url) as client,
                client.stream(
                    "POST", "/api/pull", json={"model": reference, "stream": True}
                ) as response,
            ):
                if response.status_code >= 400:
                    response.read()
                    _check(response, "pull")
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    status = json.loads(line)
                    if "error" in status:
                        raise DeployError(f"pull: {status['error']}")
                    if status.get("total"):
                        progress(int(status.get("completed") or 0), int(status["total"]))
                self._verify(client, reference)
        except httpx.HTTPError as error:
            raise DeployError(f"worker unreachable during the pull: {error}") from None

    def remove(self, url: str, reference: str) -> None:
        try:
            with self._client(url) as client:
                answer = client.request("DELETE", "/api/delete", json={"model": reference})
                if answer.status_code != 404:  # already gone is fine
                    _check(answer, "delete")
        except httpx.HTTPError as error:
            raise DeployError(f"worker unreachable: {error}") from None

    def place(self, url: str, model: CatalogModel, progress: Callable[[int, int], None]) -> None:
        """Put a catalog model on a worker, whichever way it comes (file or library)."""
        if model.source == "library":
            self.pull(url, model.reference, progress)
            return
        assert model.digest is not None
        if not self._blob_path(model.digest).exists() and self.fetch_missing is not None:
            # Every placement (deployment, migration) gets the file first, digest checked.
            self.fetch_missing(model.digest, model.size, model.reference, progress)
        self.push_and_create(url, model.reference, model.digest, progress)

    def verify(self, url: str, reference: str) -> None:
        """The worker lists the model and describes it (its manifest is readable)."""
        try:
            with self._client(url) as client:
                self._verify(client, reference)
                _check(client.post("/api/show", json={"model": reference}), "show")
        except httpx.HTTPError as error:
            raise DeployError(f"worker unreachable while verifying: {error}") from None

    @staticmethod
    def _verify(client: httpx.Client, reference: str) -> None:
        tags = client.get("/api/tags")
        _check(tags, "verify")
        names = {m.get("model") or m.get("name") for m in tags.json().get("models", [])}
        if reference not in names:
            raise DeployError(f"verify: {reference} is not listed by the worker after create")
