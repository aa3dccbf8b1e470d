"""The password policy for admin accounts."""

from __future__ import annotations

from collections.abc import Callable

from domain.errors import DomainError

MIN_LENGTH = 8
MAX_LENGTH = 128


class WeakPassword(DomainError):
    code = "weak_password"


def check_password(password: str, *, is_common: Callable[[str], bool], email: str = "") -> None:
    """Refuse passwords that are too short, too long or among the most common ones."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password must have at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if is_common(lowered):
        raise WeakPassword("this password is among the most common ones; choose another")
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= 4 and local_part in lowered:
        raise WeakPassword("the password must not contain your e-mail address")
    if len(set(password)) < 3:
        raise WeakPassword("the password repeats too few different characters")
