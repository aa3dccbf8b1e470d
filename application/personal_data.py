"""Personal data of admins and employees: sealing fields and erasing a person (GDPR)."""

from __future__ import annotations

import contextlib

from application.ports import AggregateStore, PersonalDataVault
from domain.context import CommandContext, recording
from domain.errors import ConcurrencyConflict, MissingReason
from domain.personal import Erasure, Sealed

ERASED = "[erased]"


class PersonalDataService:
    def __init__(self, store: AggregateStore, vault: PersonalDataVault) -> None:
        self._store = store
        self._vault = vault

    def seal(self, subject: str, text: str) -> Sealed:
        return self._vault.seal(subject, text)

    def reveal(self, sealed: Sealed) -> str:
        """The clear text of a personal field, or a marker once its person was erased."""
        clear = self._vault.unseal(sealed)
        return ERASED if clear is None else clear

    def erase(self, subject: str, context: CommandContext) -> None:
        """Forget a person: their data key goes, the erasure is recorded (and replicated)."""
        if not context.reason.strip():
            raise MissingReason("a reason is required to erase personal data")
        # Erased before (a conflict): recording it twice would add nothing.
        with recording(context, self._store.pool_id), contextlib.suppress(ConcurrencyConflict):
            self._store.store(Erasure(subject=subject))
        # The event comes first: if the process dies here, the erasure projection deletes
        # the key when it applies the event (as it does for erasures replicated from peers).
        self._vault.forget(subject)
