"""The model catalog: resumable GGUF uploads, models, assignments, and the distribution."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status

from domain.catalog import check_capabilities, check_name
from infrastructure.automations import deploy_progress
from infrastructure.catalog_sync import sync_state
from projections.audit import query_audit
from projections.catalog import list_deployments, list_models
from web.deps import CurrentAdmin, Web
from web.routers.workers import all_workers
from web.schemas import (
    AssignmentCreate,
    AuditEntryPublic,
    CatalogSyncPublic,
    DeploymentPublic,
    DistributionPublic,
    ModelAddedPublic,
    ModelComplete,
    ModelDetailPublic,
    ModelFromLibrary,
    ModelPublic,
    ModelsPublic,
    ModelUpdate,
    Reasoned,
    UploadCreate,
    UploadPublic,
)

router = APIRouter(prefix="/api/models", tags=["models"])
distribution_router = APIRouter(prefix="/api/distribution", tags=["models"])
FLUSH_BYTES = 4 << 20


def _models(web: Web, only: str | None = None) -> list[ModelPublic]:
    web.pool.runner("catalog").catch_up()  # read your own writes
    with web.pool.database.connection() as conn:
        rows = list_models(conn, include_retired=only is not None)
        deployments = list_deployments(conn)
    names = {w.id: w.name for w in all_workers(web)}
    progress = deploy_progress(web.pool)
    by_model: dict[str, list[DeploymentPublic]] = {}
    for d in deployments:
        model_id, worker_id = str(d["model_id"]), str(d["worker_id"])
        live = progress.get((model_id, worker_id))
        deploying = live is not None and d["state"] != "deployed"
        by_model.setdefault(model_id, []).append(
            DeploymentPublic(
                worker_id=worker_id,
                worker_name=names.get(worker_id, worker_id[:8]),
                state="deploying" if deploying and d["state"] == "assigned" else d["state"],
                progress=round(live["done"] / live["total"], 3)
                if deploying and live and live["total"]
                else None,
                reason=d["reason"],
                attempts=d["attempts"],
            )
        )
    return [
        ModelPublic(
            id=str(r["id"]),
            name=r["name"],
            tag=r["tag"],
            reference=f"{r['name']}:{r['tag']}",
            digest=r["digest"],
            size=r["size"],
            metadata=_summary(r["metadata"]),
            capabilities=list(r["capabilities"]),
            notes=r["notes"],
            source=r["source"],
            added_at=r["added_at"],
            added_by=r["added_by"],
            retired=r["retired"],
            deployments=sorted(by_model.get(str(r["id"]), []), key=lambda d: d.worker_name),
        )
        for r in rows
        if only is None or str(r["id"]) == only
    ]


def _summary(metadata: dict[str, Any]) -> dict[str, Any]:
    # The chat template can be long: the list shows whether there is one.
    return {k: v for k, v in metadata.items() if k != "chat_template"}


def _one(web: Web, model_id: str) -> ModelPublic:
    found = _models(web, only=model_id)
    if not found:
        web.pool.catalog.get(model_id)  # retired or unknown: the right error
    return found[0]


# --- uploads --------------------------------------------------------------------------------


@router.post(
    "/uploads",
    operation_id="start_upload",
    response_model=UploadPublic,
    status_code=status.HTTP_201_CREATED,
)
def start_upload(*, body: UploadCreate, current: CurrentAdmin, web: Web) -> UploadPublic:
    """Begin a resumable upload of a GGUF file; send its bytes with PATCH."""
    web.pool.catalog.check_writable()
    upload = web.pool.blobs.start(body.filename, body.size, body.sha256)
    return UploadPublic(id=upload.id, filename=upload.filename, size=upload.size, offset=0)


@router.get("/uploads/{upload_id}", operation_id="get_upload", response_model=UploadPublic)
def get_upload(*, upload_id: str, current: CurrentAdmin, web: Web) -> UploadPublic:
    """How much of an upload arrived (resume from `offset` after a dropped connection)."""
    upload = web.pool.blobs.status(upload_id)
    return UploadPublic(
        id=upload.id, filename=upload.filename, size=upload.size, offset=upload.offset
    )


@router.patch(
    "/uploads/{upload_id}",
    operation_id="send_upload_bytes",
    response_model=UploadPublic,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def send_bytes(
    *,
    upload_id: str,
    request: Request,
    current: CurrentAdmin,
    web: Web,
    upload_offset: Annotated[int, Header(ge=0, description="Where these bytes start")],
) -> UploadPublic:
    """Append bytes (streamed, constant memory) at `Upload-Offset`."""
    writer = await asyncio.to_thread(web.pool.blobs.writer, upload_id, upload_offset)
    # Double buffering: one buffer is written (and hashed) in a thread while the next one
    # fills from the socket, so receiving and writing overlap. Memory: two buffers at most.
    writing: asyncio.Future[None] | None = None
    buffer = bytearray()
    try:
        async for chunk in request.stream():
            buffer += chunk
            if len(buffer) >= FLUSH_BYTES:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(asyncio.to_thread(writer.write, buffer))
                buffer = bytearray()
        if writing is not None:
            await writing
            writing = None
        if buffer:
            await asyncio.to_thread(writer.write, buffer)
    finally:
        if writing is not None:  # the request broke off: let the write in flight finish
            with contextlib.suppress(Exception):
                await writing
        writer.close()  # what arrived is kept: the client resumes from the new offset
    upload = await asyncio.to_thread(web.pool.blobs.status, upload_id)
    return UploadPublic(
        id=upload.id, filename=upload.filename, size=upload.size, offset=upload.offset
    )


@router.delete(
    "/uploads/{upload_id}", operation_id="abort_upload", status_code=status.HTTP_204_NO_CONTENT
)
def abort_upload(*, upload_id: str, current: CurrentAdmin, web: Web) -> None:
    """Give up an upload; its partial data is removed."""
    web.pool.blobs.status(upload_id)
    web.pool.blobs.abort(upload_id)


@router.post(
    "/uploads/{upload_id}/complete",
    operation_id="complete_upload",
    response_model=ModelAddedPublic,
    status_code=status.HTTP_201_CREATED,
)
def complete_upload(
    *, upload_id: str, body: ModelComplete, response: Response, current: CurrentAdmin, web: Web
) -> ModelAddedPublic:
    """Check the digest and the GGUF header, store the file, and add it to the catalog."""
    # Refuse a bad name or capability before the file is checked and stored.
    check_name(body.name, body.tag)
    if body.capabilities is not None:
        check_capabilities(body.capabilities)
    blob = web.pool.blobs.finish(upload_id)
    model, created = web.pool.catalog.add_uploaded(
        blob, body.name, body.tag, body.capabilities, body.notes, current.context(body.reason)
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return ModelAddedPublic(model=_one(web, str(model.id)), created=created)


# --- catalog --------------------------------------------------------------------------------


@router.post(
    "/library",
    operation_id="add_library_model",
    response_model=ModelPublic,
    status_code=status.HTTP_201_CREATED,
)
def add_library(*, body: ModelFromLibrary, current: CurrentAdmin, web: Web) -> ModelPublic:
    """Add a model by Ollama library name: the workers pull it (sites with a mirror)."""
    model = web.pool.catalog.add_from_library(
        body.name, body.tag, body.capabilities, body.notes, current.context(body.reason)
    )
    return _one(web, str(model.id))


@router.get("", operation_id="list_models", response_model=ModelsPublic)
def list_all(*, current: CurrentAdmin, web: Web) -> ModelsPublic:
    """The catalog, with where each model is assigned and deployed."""
    return ModelsPublic(items=_models(web), catalog=CatalogSyncPublic(**sync_state(web.pool)))


@router.get("/{model_id}", operation_id="get_model", response_model=ModelDetailPublic)
def get_one(*, model_id: str, current: CurrentAdmin, web: Web) -> ModelDetailPublic:
    """One model, its full metadata and its history."""
    model = web.pool.catalog.get(model_id)
    with web.pool.database.connection() as conn:
        entries = query_audit(conn, limit=100, aggregate_id=str(model.id))
    public = _one(web, model_id).model_dump()
    public["metadata"] = model.metadata
    return ModelDetailPublic(**public, history=[AuditEntryPublic(**e.as_json()) for e in entries])


@router.patch("/{model_id}", operation_id="update_model", response_model=ModelPublic)
def update(*, model_id: str, body: ModelUpdate, current: CurrentAdmin, web: Web) -> ModelPublic:
    """Change a model's capabilities or notes."""
    web.pool.catalog.update(model_id, body.capabilities, body.notes, current.context(body.reason))
    return _one(web, model_id)


@router.post(
    "/{model_id}/retire", operation_id="retire_model", status_code=status.HTTP_204_NO_CONTENT
)
def retire(*, model_id: str, body: Reasoned, current: CurrentAdmin, web: Web) -> None:
    """Retire a model (it must be unassigned everywhere first)."""
    web.pool.catalog.retire(model_id, current.context(body.reason))


@router.post("/{model_id}/assignments", operation_id="assign_model", response_model=ModelPublic)
def assign(
    *, model_id: str, body: AssignmentCreate, current: CurrentAdmin, web: Web
) -> ModelPublic:
    """Assign to these workers, or to any `count` online workers with room; deployment follows."""
    candidates = [
        w.id
        for w in sorted(all_workers(web), key=lambda w: len(w.installed_models))
        if w.status == "online" and not w.drained
    ]
    web.pool.catalog.assign(
        model_id,
        body.worker_ids,
        current.context(body.reason),
        candidates=candidates,
        count=body.count,
    )
    return _one(web, model_id)


@router.post(
    "/{model_id}/assignments/{worker_id}/remove",
    operation_id="unassign_model",
    response_model=ModelPublic,
)
def unassign(
    *, model_id: str, worker_id: str, body: Reasoned, current: CurrentAdmin, web: Web
) -> ModelPublic:
    """Unassign: the model is deleted from that worker."""
    web.pool.catalog.unassign(model_id, worker_id, current.context(body.reason))
    return _one(web, model_id)


@distribution_router.get("", operation_id="get_distribution", response_model=DistributionPublic)
def distribution(*, current: CurrentAdmin, web: Web) -> DistributionPublic:
    """Models by workers: the state of each model on each worker, live."""
    return DistributionPublic(models=_models(web), workers=all_workers(web))
