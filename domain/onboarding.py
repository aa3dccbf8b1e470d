"""The first-boot onboarding wizard: one aggregate per pool, one event per step.

Required steps run in order (admin, pool, public URL, identity); optional steps (SMTP,
branding, license, pairing) may be skipped and done later. The first-admin step can happen
once: afterwards, admins are created by admins.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import PoolAggregate
from domain.context import Scope
from domain.errors import DomainError

ONBOARDING_NAMESPACE = uuid.UUID("5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d")


class Step(StrEnum):
    ADMIN = "admin"
    POOL = "pool"
    PUBLIC_URL = "public_url"
    IDENTITY = "identity"
    SMTP = "smtp"
    BRANDING = "branding"
    LICENSE = "license"
    PAIRING = "pairing"


REQUIRED_STEPS = (Step.ADMIN, Step.POOL, Step.PUBLIC_URL, Step.IDENTITY)
OPTIONAL_STEPS = (Step.SMTP, Step.BRANDING, Step.LICENSE, Step.PAIRING)
# Which issue brings each optional step's page; until then it can only be skipped.
OPTIONAL_STEP_ARRIVES_WITH = {
    Step.SMTP: "Incidents & Migrations, SMTP and failsafe escalation",
    Step.BRANDING: "Branding",
    Step.LICENSE: "License",
    Step.PAIRING: "Federation",
}


class StepStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"


class OnboardingError(DomainError):
    code = "onboarding_step_refused"


class AlreadyOnboarded(DomainError):
    code = "onboarding_complete"


class Onboarding(PoolAggregate):
    scope = Scope.LOCAL

    @event("Started")
    def __init__(self, pool_id: str) -> None:
        self.pool_id = pool_id
        self.steps: dict[str, str] = {step.value: StepStatus.PENDING.value for step in Step}
        self.first_admin_id: str | None = None
        self.pool_name = ""
        self.site = ""
        self.public_url = ""
        self.key_id = ""
        self.public_key = ""
        self.completed = False

    @staticmethod
    def create_id(pool_id: str) -> uuid.UUID:
        return uuid.uuid5(ONBOARDING_NAMESPACE, pool_id)

    def status(self, step: Step) -> StepStatus:
        return StepStatus(self.steps[step.value])

    @property
    def next_step(self) -> Step | None:
        for step in (*REQUIRED_STEPS, *OPTIONAL_STEPS):
            if self.status(step) is StepStatus.PENDING:
                return step
        return None

    def check_turn(self, step: Step) -> None:
        if self.completed and step in REQUIRED_STEPS:
            raise AlreadyOnboarded("onboarding is complete; change this from its own page")
        if step is Step.ADMIN and self.status(Step.ADMIN) is not StepStatus.PENDING:
            raise AlreadyOnboarded("the first admin exists; admins now create other admins")
        earlier_steps = (
            REQUIRED_STEPS[: REQUIRED_STEPS.index(step)] if step in REQUIRED_STEPS else ()
        )
        for earlier in earlier_steps:
            if self.status(earlier) is StepStatus.PENDING:
                raise OnboardingError(f"step {earlier.value!r} comes before {step.value!r}")
        if step in OPTIONAL_STEPS:
            missing = [s.value for s in REQUIRED_STEPS if self.status(s) is StepStatus.PENDING]
            if missing:
                raise OnboardingError(f"finish the required steps first: {', '.join(missing)}")

    def record_first_admin(self, admin_id: str) -> None:
        self.check_turn(Step.ADMIN)
        self._first_admin_created(admin_id=admin_id)

    @event("FirstAdminCreated")
    def _first_admin_created(self, admin_id: str) -> None:
        self.first_admin_id = admin_id
        self.steps[Step.ADMIN.value] = StepStatus.DONE.value

    def name_pool(self, pool_name: str, site: str) -> None:
        self.check_turn(Step.POOL)
        self._pool_named(pool_name=pool_name, site=site)

    @event("PoolNamed")
    def _pool_named(self, pool_name: str, site: str) -> None:
        self.pool_name = pool_name
        self.site = site
        self.steps[Step.POOL.value] = StepStatus.DONE.value

    def set_public_url(self, public_url: str) -> None:
        self.check_turn(Step.PUBLIC_URL)
        self._public_url_set(public_url=public_url)

    @event("PublicUrlSet")
    def _public_url_set(self, public_url: str) -> None:
        self.public_url = public_url
        self.steps[Step.PUBLIC_URL.value] = StepStatus.DONE.value

    def record_identity(self, key_id: str, public_key: str) -> None:
        self.check_turn(Step.IDENTITY)
        if self.status(Step.IDENTITY) is not StepStatus.PENDING:
            raise OnboardingError("this pool already has its identity")
        self._identity_generated(key_id=key_id, public_key=public_key)

    @event("IdentityGenerated")
    def _identity_generated(self, key_id: str, public_key: str) -> None:
        self.key_id = key_id
        self.public_key = public_key
        self.steps[Step.IDENTITY.value] = StepStatus.DONE.value

    def rotate_key(self, key_id: str, public_key: str) -> None:
        if self.status(Step.IDENTITY) is not StepStatus.DONE:
            raise OnboardingError("this pool has no identity to rotate yet")
        self._key_rotated(key_id=key_id, public_key=public_key)

    @event("KeyRotated")
    def _key_rotated(self, key_id: str, public_key: str) -> None:
        self.key_id = key_id
        self.public_key = public_key

    def skip(self, step: Step) -> None:
        if step not in OPTIONAL_STEPS:
            raise OnboardingError(f"step {step.value!r} is required and cannot be skipped")
        self.check_turn(step)
        if self.status(step) is not StepStatus.PENDING:
            raise OnboardingError(f"step {step.value!r} is already {self.status(step).value}")
        self._step_skipped(step=step.value)

    @event("StepSkipped")
    def _step_skipped(self, step: str) -> None:
        self.steps[step] = StepStatus.SKIPPED.value

    def complete(self) -> None:
        if self.completed:
            raise AlreadyOnboarded("onboarding is already complete")
        # Optional steps may stay pending: they are done later from their own pages.
        pending = [s.value for s in REQUIRED_STEPS if self.status(s) is StepStatus.PENDING]
        if pending:
            raise OnboardingError(f"required steps still pending: {', '.join(pending)}")
        self._completed()

    @event("Completed")
    def _completed(self) -> None:
        self.completed = True

    def summary(self) -> dict[str, Any]:
        return {
            "pool_name": self.pool_name,
            "site": self.site,
            "public_url": self.public_url,
            "key_id": self.key_id,
            "public_key": self.public_key,
        }
