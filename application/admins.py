"""Admin accounts and their sessions: register, log in and out, disable, change password."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from uuid import UUID

from application.personal_data import PersonalDataService
from application.ports import (
    AggregateStore,
    Digester,
    LoginThrottle,
    PasswordHasher,
    SessionStore,
)
from application.settings import SettingsService
from domain.admins import Admin, AdminRuleViolated
from domain.context import CommandContext, recording
from domain.errors import ConcurrencyConflict, DomainError, NotFound
from domain.passwords import check_password

# Verified when the account does not exist, so a wrong e-mail costs the same time as a
# wrong password and the answer never tells which one it was.
ADMIN_CACHE_SECONDS = 1.0
_DUMMY_PASSWORD = "archipel-timing-equaliser"  # noqa: S105 (not a credential)


class InvalidCredentials(DomainError):
    code = "invalid_credentials"


class LoginThrottled(DomainError):
    code = "too_many_attempts"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class NotAuthenticated(DomainError):
    code = "not_authenticated"


class EmailTaken(DomainError):
    code = "email_taken"


@dataclass(frozen=True)
class AdminProfile:
    id: str
    email: str
    display_name: str
    status: str


@dataclass(frozen=True)
class LoggedIn:
    session_id: str
    admin: AdminProfile


def normalise_email(email: str) -> str:
    return email.strip().lower()


class AdminService:
    def __init__(
        self,
        store: AggregateStore,
        personal: PersonalDataService,
        hasher: PasswordHasher,
        digester: Digester,
        sessions: SessionStore,
        throttle: LoginThrottle,
        settings: SettingsService,
    ) -> None:
        self._store = store
        self._personal = personal
        self._hasher = hasher
        self._digester = digester
        self._sessions = sessions
        self._throttle = throttle
        self._settings = settings
        self._dummy_hash = hasher.hash(_DUMMY_PASSWORD)
        # The admin behind each session, as loaded by a recent request: every request of a
        # session needs it. Own writes drop the entry; another process's write is seen within
        # ADMIN_CACHE_SECONDS (disabling an admin also ends their sessions, at once).
        self._recent: dict[str, tuple[float, Admin]] = {}

    # --- accounts -------------------------------------------------------------------------

    def register(
        self, email: str, display_name: str, password: str, context: CommandContext
    ) -> Admin:
        """A new active admin (not yet saved when `save` is False: onboarding saves it)."""
        admin = self.new_admin(email, display_name, password, context)
        try:
            self._save(admin)
        except ConcurrencyConflict:
            raise EmailTaken("an admin with this e-mail address already exists") from None
        return admin

    def new_admin(
        self, email: str, display_name: str, password: str, context: CommandContext
    ) -> Admin:
        email = normalise_email(email)
        check_password(password, is_common=self._hasher.is_common, email=email)
        digest = self._digester.email(email)
        admin_id = Admin.create_id(digest)
        if self._exists(admin_id):
            raise EmailTaken("an admin with this e-mail address already exists")
        subject = f"admin:{admin_id}"
        with recording(context, self._store.pool_id):
            return Admin(
                email_digest=digest,
                email=self._personal.seal(subject, email),
                display_name=self._personal.seal(subject, display_name.strip()),
                password_hash=self._personal.seal(subject, self._hasher.hash(password)),
            )

    def profile(self, admin: Admin) -> AdminProfile:
        return AdminProfile(
            id=str(admin.id),
            email=self._personal.reveal(admin.email),
            display_name=self._personal.reveal(admin.display_name),
            status=str(admin.status),
        )

    def get(self, admin_id: str) -> Admin:
        try:
            return self._store.load(UUID(admin_id), Admin)
        except (NotFound, ValueError):
            raise NotFound(f"no admin {admin_id}") from None

    def disable(self, admin_id: str, context: CommandContext, *, active_admins: int) -> None:
        """Disable an admin and end all their sessions."""
        if context.actor == f"admin:{admin_id}":
            raise AdminRuleViolated("you cannot disable your own account")
        admin = self.get(admin_id)
        if admin.is_active and active_admins <= 1:
            raise AdminRuleViolated("the last active admin cannot be disabled")
        with recording(context, self._store.pool_id):
            admin.disable()
            self._save(admin)
        self._sessions.close_all(admin_id)

    def enable(self, admin_id: str, context: CommandContext) -> None:
        admin = self.get(admin_id)
        with recording(context, self._store.pool_id):
            admin.enable()
            self._save(admin)

    def change_password(
        self, admin_id: str, old_password: str, new_password: str, context: CommandContext
    ) -> None:
        admin = self.get(admin_id)
        if not self._hasher.verify(self._personal.reveal(admin.password_hash), old_password):
            raise InvalidCredentials("the current password is wrong")
        email = self._personal.reveal(admin.email)
        check_password(new_password, is_common=self._hasher.is_common, email=email)
        with recording(context, self._store.pool_id):
            admin.change_password(
                self._personal.seal(admin.subject, self._hasher.hash(new_password))
            )
            self._save(admin)

    # --- sessions -------------------------------------------------------------------------

    def login(self, email: str, password: str, client: str) -> LoggedIn:
        """Check the credentials and open a new session (a fresh id at every login)."""
        email = normalise_email(email)
        digest = self._digester.email(email)
        keys = [f"account:{digest}", f"client:{client}"]
        threshold = self._settings.int_value("auth.login_lockout_threshold")
        wait = self._throttle.retry_after(keys, threshold)
        if wait:
            raise LoginThrottled(
                f"too many failed logins; try again in {wait} seconds", retry_after=wait
            )
        admin_id = Admin.create_id(digest)
        admin = self._store.load(admin_id, Admin) if self._exists(admin_id) else None
        stored_hash = self._personal.reveal(admin.password_hash) if admin else self._dummy_hash
        valid = self._hasher.verify(stored_hash, password)
        if admin is None or not valid or not admin.is_active:
            self._throttle.failed(keys, threshold)
            raise InvalidCredentials("wrong e-mail address or password")
        self._throttle.succeeded(keys)
        context = CommandContext(actor=f"admin:{admin.id}", reason="login")
        with recording(context, self._store.pool_id):
            if self._hasher.needs_rehash(stored_hash):
                admin.change_password(
                    self._personal.seal(admin.subject, self._hasher.hash(password)), rehash=True
                )
            admin.logged_in()
            self._save(admin)
        session_id = self._sessions.open(str(admin.id), client)
        return LoggedIn(session_id, self.profile(admin))

    def authenticate(self, session_id: str | None) -> Admin:
        """The admin behind a live session, or NotAuthenticated."""
        if not session_id:
            raise NotAuthenticated("log in first")
        idle = self._settings.int_value("auth.session_idle_timeout_minutes") * 60
        absolute = self._settings.int_value("auth.session_absolute_timeout_hours") * 3600
        admin_id = self._sessions.find(session_id, idle, absolute)
        if admin_id is None:
            raise NotAuthenticated("your session has ended; log in again")
        admin = self._recently_seen(admin_id)
        if not admin.is_active:
            self._sessions.close_all(admin_id)
            raise NotAuthenticated("this admin account is disabled")
        return admin

    def logout(self, session_id: str, admin: Admin) -> None:
        self._sessions.close(session_id)
        admin = self.get(str(admin.id))  # the stored state, not the request's cached copy
        context = CommandContext(actor=f"admin:{admin.id}", reason="logout")
        # A concurrent login of the same admin may conflict: the session is closed anyway.
        with recording(context, self._store.pool_id), contextlib.suppress(ConcurrencyConflict):
            admin.logged_out()
            self._save(admin)

    def _recently_seen(self, admin_id: str) -> Admin:
        seen = self._recent.get(admin_id)
        if seen is not None and time.monotonic() - seen[0] < ADMIN_CACHE_SECONDS:
            return seen[1]
        admin = self.get(admin_id)
        if len(self._recent) > 1000:  # admins are few; this only bounds a pathological case
            self._recent.clear()
        self._recent[admin_id] = (time.monotonic(), admin)
        return admin

    def _save(self, admin: Admin) -> None:
        try:
            self._store.store(admin)
        finally:
            self._recent.pop(str(admin.id), None)

    def _exists(self, admin_id: UUID) -> bool:
        try:
            self._store.load(admin_id, Admin)
        except NotFound:
            return False
        return True
