"""The model catalog: models the pool can run, and where each one is assigned and deployed.

Replicated scope: once pools are paired, the master pool's catalog is the cluster's. A model
is identified by name and tag; its content by the sha256 digest of its GGUF file.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import PoolAggregate
from domain.context import Scope
from domain.errors import DomainError

CATALOG_NAMESPACE = uuid.UUID("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CAPABILITIES = ("chat", "embedding", "vision", "code", "tools")


class InvalidModel(DomainError):
    code = "invalid_model"


class ModelStateError(DomainError):
    code = "model_state"


class DeployState(StrEnum):
    ASSIGNED = "assigned"
    DEPLOYED = "deployed"
    FAILED = "failed"


def check_name(name: str, tag: str) -> tuple[str, str]:
    name, tag = name.strip().lower(), tag.strip() or "latest"
    if not _NAME.match(name):
        raise InvalidModel(
            f"model name {name!r}: 1 to 64 lowercase letters, digits, '.', '_' or '-'"
        )
    if not _TAG.match(tag):
        raise InvalidModel(f"tag {tag!r}: 1 to 64 letters, digits, '.', '_' or '-'")
    return name, tag


def check_capabilities(capabilities: list[str]) -> list[str]:
    unknown = [c for c in capabilities if c not in CAPABILITIES]
    if unknown:
        raise InvalidModel(f"unknown capabilities {unknown}; choose from {', '.join(CAPABILITIES)}")
    return sorted(set(capabilities))


class CatalogModel(PoolAggregate):
    scope = Scope.REPLICATED

    @event("Added")
    def __init__(
        self,
        name: str,
        tag: str,
        digest: str | None,
        size: int,
        metadata: dict[str, Any],
        capabilities: list[str],
        notes: str,
        source: str,
    ) -> None:
        self.name = name
        self.tag = tag
        self.digest = digest
        self.size = size
        self.metadata = metadata
        self.capabilities = capabilities
        self.notes = notes
        self.source = source  # "upload": we push the file; "library": the worker pulls it
        self.retired = False
        self.deployments: dict[str, str] = {}  # worker id -> DeployState

    @staticmethod
    def create_id(name: str, tag: str) -> uuid.UUID:
        return uuid.uuid5(CATALOG_NAMESPACE, f"{name}:{tag}")

    @property
    def reference(self) -> str:
        """How Ollama names it on a worker."""
        return f"{self.name}:{self.tag}"

    def _check_active(self) -> None:
        if self.retired:
            raise ModelStateError(f"{self.reference} is retired")

    def update(self, capabilities: list[str] | None, notes: str | None) -> bool:
        self._check_active()
        new_caps = self.capabilities if capabilities is None else check_capabilities(capabilities)
        new_notes = self.notes if notes is None else notes[:2000]
        if (new_caps, new_notes) == (self.capabilities, self.notes):
            return False
        self._updated(capabilities=new_caps, notes=new_notes)
        return True

    @event("Updated")
    def _updated(self, capabilities: list[str], notes: str) -> None:
        self.capabilities = capabilities
        self.notes = notes

    def retire(self) -> None:
        self._check_active()
        if self.deployments:
            raise ModelStateError(
                f"{self.reference} is still assigned to {len(self.deployments)} worker(s); "
                "unassign it first"
            )
        self._retired()

    @event("Retired")
    def _retired(self) -> None:
        self.retired = True

    def assign(self, worker_id: str) -> bool:
        self._check_active()
        if worker_id in self.deployments:
            return False
        self._assigned(worker_id=worker_id)
        return True

    @event("Assigned")
    def _assigned(self, worker_id: str) -> None:
        self.deployments[worker_id] = DeployState.ASSIGNED.value

    def unassign(self, worker_id: str) -> None:
        if worker_id not in self.deployments:
            raise ModelStateError(f"{self.reference} is not assigned to worker {worker_id}")
        self._unassigned(worker_id=worker_id)

    @event("Unassigned")
    def _unassigned(self, worker_id: str) -> None:
        self.deployments.pop(worker_id, None)

    def deployed(self, worker_id: str) -> bool:
        if self.deployments.get(worker_id) in (None, DeployState.DEPLOYED.value):
            return False  # unassigned meanwhile, or already recorded (a redelivery)
        self._deployed(worker_id=worker_id)
        return True

    @event("Deployed")
    def _deployed(self, worker_id: str) -> None:
        self.deployments[worker_id] = DeployState.DEPLOYED.value

    def deploy_failed(self, worker_id: str, reason: str, attempt: int) -> bool:
        if worker_id not in self.deployments:
            return False
        self._deploy_failed(worker_id=worker_id, reason=reason[:500], attempt=attempt)
        return True

    @event("DeployFailed")
    def _deploy_failed(self, worker_id: str, reason: str, attempt: int) -> None:
        self.deployments[worker_id] = DeployState.FAILED.value
