"""The first-boot wizard: create the first admin, name the pool, set its URL, make its keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from application.admins import AdminService
from application.ports import AggregateStore, PoolIdentityKeys
from domain.admins import Admin
from domain.context import CommandContext, recording
from domain.errors import ConcurrencyConflict, DomainError, NotFound
from domain.onboarding import (
    OPTIONAL_STEP_ARRIVES_WITH,
    OPTIONAL_STEPS,
    REQUIRED_STEPS,
    AlreadyOnboarded,
    Onboarding,
    Step,
)

SYSTEM = "system:onboarding"


class InvalidOnboardingInput(DomainError):
    code = "invalid_onboarding_input"


@dataclass(frozen=True)
class StepView:
    step: str
    required: bool
    status: str
    arrives_with: str | None


@dataclass(frozen=True)
class OnboardingState:
    completed: bool
    next_step: str | None
    steps: list[StepView]
    profile: dict[str, Any]
    has_admin: bool


class OnboardingService:
    def __init__(self, store: AggregateStore, admins: AdminService, keys: PoolIdentityKeys) -> None:
        self._store = store
        self._admins = admins
        self._keys = keys
        self._admin_exists = False  # once true, true for good

    def _load(self) -> Onboarding | None:
        try:
            return self._store.load(Onboarding.create_id(self._store.pool_id), Onboarding)
        except NotFound:
            return None

    def _load_or_start(self, context: CommandContext) -> Onboarding:
        wizard = self._load()
        if wizard is None:
            with recording(context, self._store.pool_id):
                wizard = Onboarding(pool_id=self._store.pool_id)
        return wizard

    @property
    def admin_seen(self) -> bool:
        """True once an admin is known to exist (it stays true): no store read needed."""
        return self._admin_exists

    def has_admin(self) -> bool:
        if not self._admin_exists:
            wizard = self._load()
            self._admin_exists = wizard is not None and wizard.first_admin_id is not None
        return self._admin_exists

    def state(self) -> OnboardingState:
        wizard = self._load()
        if wizard is None:
            with recording(CommandContext(actor=SYSTEM, reason="read"), self._store.pool_id):
                wizard = Onboarding(pool_id=self._store.pool_id)  # not saved: a blank view
        steps = [
            StepView(
                step.value,
                step in REQUIRED_STEPS,
                wizard.status(step).value,
                OPTIONAL_STEP_ARRIVES_WITH.get(step),
            )
            for step in (*REQUIRED_STEPS, *OPTIONAL_STEPS)
        ]
        next_step = wizard.next_step
        return OnboardingState(
            completed=wizard.completed,
            next_step=None if wizard.completed or next_step is None else next_step.value,
            steps=steps,
            profile=wizard.summary(),
            has_admin=wizard.first_admin_id is not None,
        )

    def create_first_admin(
        self, email: str, display_name: str, password: str, reason: str = "first boot"
    ) -> Admin:
        """Step 1: the first admin and the wizard's progress are saved together, once."""
        context = CommandContext(actor=SYSTEM, reason=reason)
        wizard = self._load_or_start(context)
        if wizard.first_admin_id is not None:
            raise AlreadyOnboarded("the first admin exists; admins now create other admins")
        if not display_name.strip():
            raise InvalidOnboardingInput("the display name must not be empty")
        admin = self._admins.new_admin(email, display_name, password, context)
        with recording(context, self._store.pool_id):
            wizard.record_first_admin(str(admin.id))
        try:
            self._store.store(wizard, admin)
        except ConcurrencyConflict:
            # Someone else completed this step a moment earlier: one first admin only.
            raise AlreadyOnboarded(
                "the first admin exists; admins now create other admins"
            ) from None
        self._admin_exists = True
        return admin

    def name_pool(self, pool_name: str, site: str, context: CommandContext) -> None:
        pool_name, site = pool_name.strip(), site.strip()
        if not 1 <= len(pool_name) <= 64 or not 1 <= len(site) <= 64:
            raise InvalidOnboardingInput("pool name and site must have 1 to 64 characters")
        self._step(context, lambda wizard: wizard.name_pool(pool_name, site))

    def set_public_url(self, public_url: str, context: CommandContext) -> None:
        parts = urlsplit(public_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidOnboardingInput(
                "the public URL must be an http:// or https:// URL with a host name"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise InvalidOnboardingInput("the public URL must not have a path, query or fragment")
        self._step(context, lambda wizard: wizard.set_public_url(public_url.strip().rstrip("/")))

    def generate_identity(self, context: CommandContext) -> None:
        wizard = self._require()
        # Refuse before touching the key file when the step is not due.
        with recording(context, self._store.pool_id):
            wizard.check_turn(Step.IDENTITY)
        key_id, public_key = self._keys.generate()
        self._step(context, lambda w: w.record_identity(key_id, public_key))

    def record_rotation(self, key_id: str, public_key: str, context: CommandContext) -> None:
        self._step(context, lambda wizard: wizard.rotate_key(key_id, public_key))

    def skip(self, step: str, context: CommandContext) -> None:
        try:
            chosen = Step(step)
        except ValueError:
            raise NotFound(f"no onboarding step {step!r}") from None
        self._step(context, lambda wizard: wizard.skip(chosen))

    def complete(self, context: CommandContext) -> None:
        self._step(context, lambda wizard: wizard.complete())

    def profile(self) -> dict[str, Any]:
        wizard = self._load()
        return wizard.summary() if wizard else {}

    def _require(self) -> Onboarding:
        wizard = self._load()
        if wizard is None:
            raise InvalidOnboardingInput("create the first admin first")
        return wizard

    def _step(self, context: CommandContext, change: Any) -> None:
        wizard = self._require()
        with recording(context, self._store.pool_id):
            change(wizard)
            self._store.store(wizard)
