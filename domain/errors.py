"""Errors a command can end in. Each has a stable `code` the API and CLI show to users."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a user's command can cause; `code` is machine-readable."""

    code = "domain_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    code = "not_found"


class ConcurrencyConflict(DomainError):
    """Someone else changed the same aggregate first; reload and try again."""

    code = "conflict"


class UnknownFlag(DomainError):
    code = "unknown_flag"


class InvalidFlagValue(DomainError):
    code = "invalid_flag_value"


class MissingCommandContext(DomainError):
    """A state change was attempted outside a command (no actor, no reason)."""

    code = "missing_command_context"


class InvalidActor(DomainError):
    code = "invalid_actor"


class PersonalDataErased(DomainError):
    """The person's data key was deleted: their personal fields are gone for good."""

    code = "personal_data_erased"


class MissingReason(DomainError):
    code = "reason_required"
