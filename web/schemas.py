"""Request and response models of the admin API (families: XCreate, XUpdate, XPublic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FlagValueModel = bool | int | float | str | list[str]


class Reasoned(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="Why: kept in the audit.")


class AdminPublic(BaseModel):
    id: str
    email: str
    display_name: str
    status: str
    created_at: datetime | None = None
    last_login_at: datetime | None = None


class AdminsPublic(BaseModel):
    items: list[AdminPublic]


class AdminCreate(Reasoned):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    display_name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024)


class LoginRequest(BaseModel):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class SessionPublic(BaseModel):
    admin: AdminPublic
    csrf_token: str


class CsrfPublic(BaseModel):
    csrf_token: str


class PasswordChange(BaseModel):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class FlagChangePublic(BaseModel):
    actor: str
    reason: str
    at: datetime


class FlagPublic(BaseModel):
    key: str
    type: str
    value: FlagValueModel
    default: FlagValueModel
    is_default: bool
    scope: str
    page: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: list[str] = []
    unit: str = ""
    max_length: int | None = None
    last_change: FlagChangePublic | None = None


class FlagsPublic(BaseModel):
    items: list[FlagPublic]


class FlagUpdate(Reasoned):
    value: FlagValueModel


class AuditEntryPublic(BaseModel):
    position: int
    event_id: str | None
    occurred_at: datetime
    event_type: str
    aggregate_type: str
    aggregate_id: str
    actor: str
    reason: str
    correlation_id: str | None
    causation_id: str | None
    origin_pool: str | None
    scope: str | None
    payload: dict[str, Any]


class AuditPagePublic(BaseModel):
    items: list[AuditEntryPublic]
    next_cursor: int | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class OnboardingStepPublic(BaseModel):
    step: str
    required: bool
    status: str
    arrives_with: str | None


class OnboardingPublic(BaseModel):
    completed: bool
    has_admin: bool
    next_step: str | None
    steps: list[OnboardingStepPublic]
    pool_name: str
    site: str
    public_url: str
    key_id: str
    public_key: str


class FirstAdminCreate(BaseModel):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    display_name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024)


class FirstAdminCreated(BaseModel):
    onboarding: OnboardingPublic
    session: SessionPublic


class PoolNaming(BaseModel):
    pool_name: str = Field(min_length=1, max_length=64)
    site: str = Field(min_length=1, max_length=64)


class PublicUrlSetting(BaseModel):
    public_url: str = Field(min_length=1, max_length=300)


class ProjectionPublic(BaseModel):
    view: str
    position: int
    lag: int


class PoolIdentityPublic(BaseModel):
    id: str
    name: str
    site: str
    public_url: str
    key_id: str


class OverviewPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": "The pool's KPIs so far."})
    pool: PoolIdentityPublic
    admins_active: int
    admins_total: int
    flags_changed_24h: int
    events_recorded: int
    projections: list[ProjectionPublic]
    uptime_seconds: float
    live_clients: int
    workers: WorkerCounts


class FieldErrorPublic(BaseModel):
    field: str
    message: str


class ErrorPublic(BaseModel):
    """Every error response: a sentence for people and a stable code for programs."""

    detail: str
    code: str
    errors: list[FieldErrorPublic] | None = Field(
        default=None, description="For validation errors: each field and its problem."
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorPublic, "description": description}
    for status, description in (
        (401, "Not logged in, or the session has ended"),
        (403, "Refused: CSRF/Origin check, onboarding not finished, or account disabled"),
        (404, "No such resource"),
        (409, "Conflicts with the current state (someone else changed it first, ...)"),
        (422, "Invalid input; `detail` says what and where"),
        (429, "Too many attempts; see Retry-After"),
    )
}


class WorkerCreate(Reasoned):
    url: str = Field(min_length=1, max_length=300, description="e.g. http://gpu-1:11434")
    name: str = Field(min_length=1, max_length=64)
    labels: list[str] = Field(default_factory=list, max_length=20)
    capacity: int = Field(default=4, ge=1, le=1024, description="Max concurrent requests")


class WorkerUpdate(Reasoned):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    labels: list[str] | None = Field(default=None, max_length=20)
    capacity: int | None = Field(default=None, ge=1, le=1024)


class WorkerPublic(BaseModel):
    id: str
    url: str
    name: str
    labels: list[str]
    capacity: int
    status: str = Field(description="unknown, online or offline (recorded transitions)")
    status_reason: str
    status_since: datetime
    drained: bool
    activity: str = Field(description="busy, idle or unknown: live, from telemetry")
    inflight: int | None
    latency_ms: float | None
    version: str | None
    installed_models: list[str]
    loaded_models: list[str]
    checked_at: datetime | None


class WorkerCounts(BaseModel):
    total: int
    online: int
    busy: int
    idle: int
    offline: int
    unknown: int
    drained: int


class WorkersPublic(BaseModel):
    items: list[WorkerPublic]
    counts: WorkerCounts


class WorkerDetailPublic(WorkerPublic):
    history: list[AuditEntryPublic]


class PeerPoolPublic(BaseModel):
    pool_id: str
    name: str
    url: str
    link: str = Field(description="healthy, lagging, silent or quarantined: the replication link")
    lag_events: int
    workers_online: int
    workers_offline: int
    workers_total: int


class TopologyPublic(BaseModel):
    pool: PoolIdentityPublic
    workers: list[WorkerPublic]
    counts: WorkerCounts
    peers: list[PeerPoolPublic] = Field(default_factory=list)


OverviewPublic.model_rebuild()


class UploadCreate(BaseModel):
    filename: str = Field(min_length=1, max_length=200)
    size: int = Field(gt=0, description="Bytes the file has")
    sha256: str | None = Field(
        default=None, pattern=r"^sha256:[0-9a-f]{64}$", description="Checked when complete"
    )


class UploadPublic(BaseModel):
    id: str
    filename: str
    size: int
    offset: int = Field(description="Bytes received so far: resume from here")


class ModelComplete(Reasoned):
    name: str = Field(min_length=1, max_length=64)
    tag: str = Field(default="latest", min_length=1, max_length=64)
    capabilities: list[str] | None = Field(
        default=None, description="Override what the GGUF metadata suggests"
    )
    notes: str = Field(default="", max_length=2000)


class ModelFromLibrary(Reasoned):
    name: str = Field(min_length=1, max_length=64)
    tag: str = Field(default="latest", min_length=1, max_length=64)
    capabilities: list[str] = Field(default_factory=lambda: ["chat"])
    notes: str = Field(default="", max_length=2000)


class ModelUpdate(Reasoned):
    capabilities: list[str] | None = None
    notes: str | None = Field(default=None, max_length=2000)


class DeploymentPublic(BaseModel):
    worker_id: str
    worker_name: str
    state: str = Field(description="assigned, deploying, deployed or failed")
    progress: float | None = Field(description="0..1 while bytes are being pushed")
    reason: str
    attempts: int


class ModelPublic(BaseModel):
    id: str
    name: str
    tag: str
    reference: str
    digest: str | None
    size: int
    metadata: dict[str, Any]
    capabilities: list[str]
    notes: str
    source: str
    added_at: datetime
    added_by: str
    retired: bool = False
    deployments: list[DeploymentPublic]


class CatalogSyncPublic(BaseModel):
    """This pool's catalog role; on a satellite, how far it follows the master."""

    role: str = Field(description="standalone, master or satellite (read-only catalog)")
    master_pool_id: str | None
    master_name: str | None = None
    paired: bool | None = None
    applied_seq: int | None = Field(default=None, description="master log events applied here")
    master_head_seq: int | None = None
    lag_events: int | None = None
    last_seen_at: datetime | None = None
    master_models: int | None = Field(default=None, description="models in the master catalog")
    conflicts: list[str] = Field(
        default_factory=list, description="local models whose name the master uses otherwise"
    )


class ModelsPublic(BaseModel):
    items: list[ModelPublic]
    catalog: CatalogSyncPublic


class ModelAddedPublic(BaseModel):
    model: ModelPublic
    created: bool = Field(description="False when the same file was already this model")


class ModelDetailPublic(ModelPublic):
    history: list[AuditEntryPublic]


class AssignmentCreate(Reasoned):
    worker_ids: list[str] = Field(default_factory=list, max_length=1000)
    count: int = Field(default=0, ge=0, le=1000, description="Or: any N workers with room")


class DistributionPublic(BaseModel):
    models: list[ModelPublic]
    workers: list[WorkerPublic]


class InviteCreate(Reasoned):
    pass


class InvitePublic(BaseModel):
    code: str = Field(description="Give it to the other pool's admin; it works once")
    expires_at: datetime


class PairingCreate(Reasoned):
    url: str = Field(min_length=1, max_length=300, description="The other pool's URL")
    code: str = Field(min_length=1, max_length=100, description="Its invite code")


class PeerPublic(BaseModel):
    pool_id: str
    name: str
    url: str
    key_id: str
    status: str = Field(description="paired, quarantined or unpaired")
    status_reason: str
    paired_at: datetime
    applied_seq: int
    lag_events: int
    last_seen_at: datetime | None
    lag_seconds: float | None
    rejected_batches: int


class FederationPublic(BaseModel):
    pool_id: str
    key_id: str | None
    public_key: str | None
    peers: list[PeerPublic]


class ClusterWorkerPublic(BaseModel):
    pool_id: str
    pool_name: str
    worker_id: str
    name: str
    url: str
    labels: list[str]
    capacity: int
    status: str
    status_reason: str
    drained: bool


class ClusterWorkersPublic(BaseModel):
    items: list[ClusterWorkerPublic]


class Noted(BaseModel):
    reason: str = Field(
        default="", max_length=2000, description="Why (optional): kept in the audit."
    )


Severity = Literal["info", "warning", "critical"]


class IncidentCreate(Noted):
    title: str = Field(min_length=1, max_length=200)
    detail: str = Field(default="", max_length=2000)
    severity: Severity = "warning"


class IncidentAssignment(Noted):
    admin_id: str = Field(min_length=1, max_length=64)


class IncidentComment(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class IncidentResolution(BaseModel):
    resolution: str = Field(min_length=1, max_length=2000)


class IncidentPublic(BaseModel):
    id: str
    kind: str
    severity: str
    title: str
    detail: str
    subject: str = Field(description='What it is about: "worker:<id>", "peer:<pool>", ...')
    status: str = Field(description="open, acknowledged or resolved")
    occurrences: int
    opened_at: datetime
    last_seen_at: datetime
    opened_by: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    assignee_id: str | None
    assignee_name: str | None
    escalated_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None


class IncidentCounts(BaseModel):
    open: int
    acknowledged: int
    resolved: int


class IncidentsPublic(BaseModel):
    items: list[IncidentPublic]
    counts: IncidentCounts


class TimelineEntryPublic(BaseModel):
    at: datetime
    kind: str
    actor: str
    actor_name: str | None
    text: str


class IncidentDetailPublic(IncidentPublic):
    timeline: list[TimelineEntryPublic]


class MigrationCreate(Noted):
    kind: Literal["move", "drain"]
    model_id: str | None = Field(default=None, description="move: the model")
    source_id: str | None = Field(default=None, description="move: the worker it leaves")
    target_id: str | None = Field(default=None, description="move: the worker it goes to")
    worker_id: str | None = Field(default=None, description="drain: the worker to empty")
    not_before: datetime | None = Field(default=None, description="move: start at this time")


class MigrationStepPublic(BaseModel):
    name: str
    status: str = Field(description="pending, running, done, failed, rolled_back or skipped")
    detail: str
    at: datetime | None


class MigrationPublic(BaseModel):
    id: str
    kind: str
    model_id: str
    model: str
    source_id: str | None
    source_name: str | None
    target_id: str
    target_name: str
    status: str
    created_by: str
    reason: str
    not_before: datetime | None
    created_at: datetime
    updated_at: datetime
    steps: list[MigrationStepPublic]
    progress: float | None = Field(default=None, description="0..1 while deploying")
    error: str | None
    incident_id: str | None


class MigrationsPublic(BaseModel):
    items: list[MigrationPublic]


class DecisionPublic(BaseModel):
    at: datetime
    actor: str
    event: str
    reason: str


class AutomationPublic(BaseModel):
    id: str
    title: str
    description: str
    available: bool = Field(description="False: arrives with a later release")
    trigger: str = Field(description="periodic or event")
    switch_flag: str | None
    enabled: bool
    parameter_flags: list[str]
    last_run_at: datetime | None
    next_run_at: datetime | None
    last_run_error: str | None
    last_decision: DecisionPublic | None


class AutomationsPublic(BaseModel):
    items: list[AutomationPublic]
    failover_mode: str


class SmtpPublic(BaseModel):
    configured: bool
    host: str
    port: int
    security: str
    username: str
    password_set: bool
    sender: str
    updated_at: datetime | None


class SmtpUpdate(Noted):
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    security: Literal["none", "starttls", "tls"]
    username: str = Field(default="", max_length=255)
    password: str | None = Field(
        default=None, max_length=1024, description='null keeps the current one; "" removes it'
    )
    sender: str = Field(min_length=3, max_length=254)


class SmtpTest(BaseModel):
    to: str = Field(min_length=3, max_length=254)


class SmtpTestPublic(BaseModel):
    ok: bool
    answer: str = Field(description="What the SMTP server said")


class MailPublic(BaseModel):
    id: str
    to: str
    subject: str
    kind: str
    status: str = Field(description="queued, retrying, sent or failed")
    attempts: int
    last_error: str | None
    answer: str | None
    queued_at: datetime
    sent_at: datetime | None


class MailsPublic(BaseModel):
    items: list[MailPublic]


class RecipientPublic(BaseModel):
    address: str = Field(min_length=3, max_length=254)
    kinds: list[str] = Field(max_length=10)


class RecipientsPublic(BaseModel):
    items: list[RecipientPublic]
    kinds: list[str]


class RecipientsUpdate(Noted):
    items: list[RecipientPublic] = Field(max_length=50)


class NotificationPublic(BaseModel):
    id: str
    severity: str
    title: str
    body: str
    raised_at: datetime
    read: bool


class NotificationsPublic(BaseModel):
    items: list[NotificationPublic]
    unread: int


class UnreadPublic(BaseModel):
    unread: int
