"""The model catalog: adding models (uploaded GGUF files or library names), assigning them to
workers, and the deployment automation's decisions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from application.ports import AggregateStore
from domain.catalog import CatalogModel, ModelStateError, check_capabilities, check_name
from domain.context import CommandContext, recording
from domain.errors import ConcurrencyConflict, DomainError, NotFound
from domain.workers import Worker

DEPLOY_ACTOR = "automation:deploy"
EMBEDDING_ARCHITECTURES = ("bert", "nomic-bert", "jina-bert-v2", "nomic-bert-moe")


class InvalidUpload(DomainError):
    code = "invalid_upload"


class UploadOffsetMismatch(DomainError):
    code = "upload_offset_mismatch"

    def __init__(self, detail: str, offset: int) -> None:
        super().__init__(detail)
        self.offset = offset


class UploadBusy(DomainError):
    """Another request is still writing to this upload (say, the one whose connection just
    dropped, still finishing its last write): one writer at a time, or bytes would interleave."""

    code = "upload_busy"


class DuplicateModel(DomainError):
    code = "model_exists"


class NoWorkerAvailable(DomainError):
    code = "no_worker_available"


@dataclass(frozen=True)
class StoredBlob:
    digest: str  # "sha256:<hex>"
    size: int
    metadata: dict[str, Any]


def suggested_capabilities(metadata: dict[str, Any], name: str) -> list[str]:
    """What a GGUF file's metadata says the model can do (the admin may override it)."""
    architecture = str(metadata.get("architecture", ""))
    if architecture in EMBEDDING_ARCHITECTURES or metadata.get("pooling_type") is not None:
        return ["embedding"]
    found = ["chat"]
    template = str(metadata.get("chat_template") or "")
    if "tools" in template:
        found.append("tools")
    if any(word in name for word in ("code", "coder")):
        found.append("code")
    if metadata.get("vision") or architecture in ("clip", "mllama"):
        found.append("vision")
    return sorted(found)


def satellite_of(master: str, pool_id: str) -> str | None:
    """The catalog master's pool id when this pool is one of its satellites, else None."""
    return master if master and master != pool_id else None


class CatalogReadOnly(DomainError):
    code = "catalog_read_only"


@dataclass(frozen=True)
class MasterModel:
    """A model as the catalog master's log describes it."""

    model_id: str
    name: str
    tag: str
    digest: str | None
    size: int
    metadata: dict[str, Any]
    capabilities: list[str]
    notes: str
    source: str
    retired: bool


class CatalogService:
    def __init__(
        self, store: AggregateStore, master: Callable[[], str | None] = lambda: None
    ) -> None:
        """`master()` is the catalog master's pool id when this pool is a satellite."""
        self._store = store
        self._master = master

    def check_writable(self) -> None:
        """Satellites show the master's catalog read-only: they do not edit it."""
        master = self._master()
        if master:
            raise CatalogReadOnly(
                f"this pool is a catalog satellite: models are added and edited on the master "
                f"pool {master}, and synced here"
            )

    def mirror(self, master: str, models: list[MasterModel]) -> tuple[int, list[str], int]:
        """Bring the local catalog in line with the master's (actor `peer:<master>`).

        Returns how many models changed, the conflicts (local models under a master model's
        name with other content, left alone for an admin) and how many changes are left for a
        later sync (a retirement waiting for an unassignment, a write that raced another).
        """
        changed, conflicts, later = 0, [], 0
        context = CommandContext(actor=f"peer:{master}", reason="catalog sync from the master")
        for wanted in models:
            local = self._find(UUID(wanted.model_id))
            with recording(context, self._store.pool_id):
                if local is None:
                    if wanted.retired:
                        continue
                    local = CatalogModel(
                        name=wanted.name,
                        tag=wanted.tag,
                        digest=wanted.digest,
                        size=wanted.size,
                        metadata=wanted.metadata,
                        capabilities=wanted.capabilities,
                        notes=wanted.notes,
                        source=wanted.source,
                    )
                elif local.digest != wanted.digest or local.source != wanted.source:
                    conflicts.append(local.reference)
                    continue
                elif local.retired:
                    continue
                elif wanted.retired:
                    if local.deployments:
                        later += 1  # still deployed here: retired once an admin unassigns it
                        continue
                    local.retire()
                elif not local.update(wanted.capabilities, wanted.notes):
                    continue
                try:
                    self._store.store(local)
                    changed += 1
                except ConcurrencyConflict:
                    later += 1  # changed meanwhile: the next sync looks again
        return changed, conflicts, later

    def add_uploaded(
        self,
        blob: StoredBlob,
        name: str,
        tag: str,
        capabilities: list[str] | None,
        notes: str,
        context: CommandContext,
    ) -> tuple[CatalogModel, bool]:
        """Record an uploaded file as a model; (model, False) if that name already has it."""
        self.check_writable()
        name, tag = check_name(name, tag)
        existing = self._find(CatalogModel.create_id(name, tag))
        if existing is not None:
            if existing.digest == blob.digest:
                return existing, False  # the same file under the same name: nothing to add
            raise DuplicateModel(
                f"{name}:{tag} already exists with other content; choose another tag"
            )
        caps = check_capabilities(
            capabilities
            if capabilities is not None
            else suggested_capabilities(blob.metadata, name)
        )
        with recording(context, self._store.pool_id):
            model = CatalogModel(
                name=name,
                tag=tag,
                digest=blob.digest,
                size=blob.size,
                metadata=blob.metadata,
                capabilities=caps,
                notes=notes[:2000],
                source="upload",
            )
            self._save_new(model)
        return model, True

    def add_from_library(
        self, name: str, tag: str, capabilities: list[str], notes: str, context: CommandContext
    ) -> CatalogModel:
        """A model the workers pull themselves from an Ollama library (a local mirror)."""
        self.check_writable()
        name, tag = check_name(name, tag)
        if self._find(CatalogModel.create_id(name, tag)) is not None:
            raise DuplicateModel(f"{name}:{tag} is already in the catalog")
        with recording(context, self._store.pool_id):
            model = CatalogModel(
                name=name,
                tag=tag,
                digest=None,
                size=0,
                metadata={},
                capabilities=check_capabilities(capabilities or ["chat"]),
                notes=notes[:2000],
                source="library",
            )
            self._save_new(model)
        return model

    def get(self, model_id: str) -> CatalogModel:
        try:
            model = self._find(UUID(model_id))
        except ValueError:
            model = None
        if model is None:
            raise NotFound(f"no model {model_id}")
        return model

    def update(
        self,
        model_id: str,
        capabilities: list[str] | None,
        notes: str | None,
        context: CommandContext,
    ) -> CatalogModel:
        self.check_writable()
        model = self.get(model_id)
        with recording(context, self._store.pool_id):
            if model.update(capabilities, notes):
                self._store.store(model)
        return model

    def retire(self, model_id: str, context: CommandContext) -> CatalogModel:
        self.check_writable()
        model = self.get(model_id)
        with recording(context, self._store.pool_id):
            model.retire()
            self._store.store(model)
        return model

    def assign(
        self,
        model_id: str,
        worker_ids: list[str],
        context: CommandContext,
        candidates: list[str] | None = None,
        count: int = 0,
    ) -> list[str]:
        """Assign to these workers, or to `count` of `candidates` (least loaded first)."""
        model = self.get(model_id)
        chosen = list(dict.fromkeys(worker_ids))
        if count:
            free = [w for w in candidates or [] if w not in model.deployments and w not in chosen]
            if len(free) < count:
                raise NoWorkerAvailable(
                    f"only {len(free)} online worker(s) with room for {model.reference}, "
                    f"{count} asked"
                )
            chosen.extend(free[:count])
        if not chosen:
            raise ModelStateError("name the workers, or how many")
        for worker_id in chosen:
            self._check_worker(worker_id)
        with recording(context, self._store.pool_id):
            added = [w for w in chosen if model.assign(w)]
            if added:
                self._store.store(model)
        return added

    def unassign(self, model_id: str, worker_id: str, context: CommandContext) -> CatalogModel:
        model = self.get(model_id)
        with recording(context, self._store.pool_id):
            model.unassign(worker_id)
            self._store.store(model)
        return model

    def _check_worker(self, worker_id: str) -> None:
        try:
            worker = self._store.load(UUID(worker_id), Worker)
        except (NotFound, ValueError):
            raise NotFound(f"no worker {worker_id}") from None
        if worker.removed:
            raise ModelStateError(f"worker {worker.name} was removed")

    def _save_new(self, model: CatalogModel) -> None:
        try:
            self._store.store(model)
        except ConcurrencyConflict:
            raise DuplicateModel(f"{model.reference} was just added by someone else") from None

    def _find(self, model_id: UUID) -> CatalogModel | None:
        try:
            return self._store.load(model_id, CatalogModel)
        except NotFound:
            return None


class DeploymentAutomation:
    """Records deployment outcomes (actor `automation:deploy`), idempotently."""

    def __init__(self, store: AggregateStore) -> None:
        self._store = store

    def still_wanted(self, model_id: str, worker_id: str) -> bool:
        model = self._store.load(UUID(model_id), CatalogModel)
        return worker_id in model.deployments and model.deployments[worker_id] != "deployed"

    def succeeded(self, model_id: str, worker_id: str, cause: str) -> bool:
        return self._record(model_id, cause, "deployed", lambda m: m.deployed(worker_id))

    def failed(self, model_id: str, worker_id: str, reason: str, attempt: int, cause: str) -> bool:
        return self._record(
            model_id, cause, reason, lambda m: m.deploy_failed(worker_id, reason, attempt)
        )

    def _record(self, model_id: str, cause: str, reason: str, change: Any) -> bool:
        for _ in range(3):  # an admin may change the model meanwhile: reload and retry
            model = self._store.load(UUID(model_id), CatalogModel)
            context = CommandContext(actor=DEPLOY_ACTOR, reason=reason[:500], causation_id=cause)
            with recording(context, self._store.pool_id):
                if not change(model):
                    return False
                try:
                    self._store.store(model)
                    return True
                except ConcurrencyConflict:
                    continue
        return False
