"""Admin accounts. Personal fields (e-mail, name) and the password hash are sealed per admin.

An admin is found at login by a keyed digest of their e-mail address, from which the aggregate
id derives, so no clear e-mail address is ever needed to look one up.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from eventsourcing.domain import event

from domain.aggregate import PoolAggregate
from domain.context import Scope
from domain.errors import DomainError
from domain.personal import Sealed

ADMIN_NAMESPACE = uuid.UUID("0f4c6b1e-2d3a-4f5e-9a8b-7c6d5e4f3a2b")


class AdminStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class AdminDisabled(DomainError):
    code = "admin_disabled"


class AdminRuleViolated(DomainError):
    code = "admin_rule_violated"


class Admin(PoolAggregate):
    scope = Scope.LOCAL

    @event("Registered")
    def __init__(
        self, email_digest: str, email: Sealed, display_name: Sealed, password_hash: Sealed
    ) -> None:
        self.email_digest = email_digest
        self.email = email
        self.display_name = display_name
        self.password_hash = password_hash
        self.status = AdminStatus.ACTIVE

    @staticmethod
    def create_id(email_digest: str) -> uuid.UUID:
        return uuid.uuid5(ADMIN_NAMESPACE, email_digest)

    @property
    def subject(self) -> str:
        """Whose data key seals this admin's personal fields."""
        return f"admin:{self.id}"

    @property
    def is_active(self) -> bool:
        return self.status == AdminStatus.ACTIVE

    def check_active(self) -> None:
        if not self.is_active:
            raise AdminDisabled("this admin account is disabled")

    @event("PasswordChanged")
    def change_password(self, password_hash: Sealed, rehash: bool = False) -> None:
        self.password_hash = password_hash

    def disable(self) -> None:
        if self.status == AdminStatus.DISABLED:
            raise AdminRuleViolated("this admin is already disabled")
        self._disabled()

    @event("Disabled")
    def _disabled(self) -> None:
        self.status = AdminStatus.DISABLED

    def enable(self) -> None:
        if self.status == AdminStatus.ACTIVE:
            raise AdminRuleViolated("this admin is already active")
        self._enabled()

    @event("Enabled")
    def _enabled(self) -> None:
        self.status = AdminStatus.ACTIVE

    @event("LoggedIn")
    def logged_in(self) -> None:
        pass

    @event("LoggedOut")
    def logged_out(self) -> None:
        pass
