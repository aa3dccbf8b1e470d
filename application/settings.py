"""Reading and changing runtime flags. The CLI, the API and the UI all come through here."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from application.ports import AggregateStore
from domain.context import CommandContext, Scope, recording
from domain.errors import ConcurrencyConflict, InvalidFlagValue, MissingReason, NotFound
from domain.flags import REGISTRY, FlagSpec, FlagValue, flag_spec, from_event_value
from domain.settings import ClusterSettings, FlagSet, PoolSettings

CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class FlagState:
    spec: FlagSpec
    value: FlagValue

    @property
    def is_default(self) -> bool:
        return self.value == self.spec.default


@dataclass
class _QueuedWrite:
    """One caller's change of a flag set, waiting for the save that carries it."""

    mutate: Callable[[FlagSet], bool]
    context: CommandContext
    changed: bool = False
    error: Exception | None = None
    done: bool = False


class SettingsService:
    def __init__(
        self,
        store: AggregateStore,
        registry: dict[str, FlagSpec] | None = None,
        cache_seconds: float = 0.0,
    ) -> None:
        """`cache_seconds`: how stale a read may be when another process changed a flag (this
        process's own changes are seen at once). Hot paths read flags on every request."""
        self._store = store
        self._registry = REGISTRY if registry is None else registry
        self._cache_seconds = cache_seconds
        self._cached: dict[Scope, tuple[float, FlagSet | None]] = {}
        self._generation = 0  # bumped by every write: a read begun before it is not cached
        self._write_locks = {scope: threading.Lock() for scope in Scope}
        self._written: dict[Scope, FlagSet] = {}  # what this process stored last, per scope
        self._queue_lock = threading.Lock()
        self._queued: dict[Scope, list[_QueuedWrite]] = {scope: [] for scope in Scope}

    def current(self) -> list[FlagState]:
        """Every flag with its value, in registry order."""
        sets = {scope: self._load(scope) for scope in Scope}
        return [
            FlagState(spec, self._value(sets[spec.scope], spec)) for spec in self._registry.values()
        ]

    def value(self, key: str) -> FlagValue:
        spec = flag_spec(key, self._registry)
        return self._value(self._load(spec.scope), spec)

    def int_value(self, key: str) -> int:
        value = self.value(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{key} is not an int flag")
        return value

    def float_value(self, key: str) -> float:
        value = self.value(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{key} is not a number flag")
        return float(value)

    def str_value(self, key: str) -> str:
        return str(self.value(key))

    def bool_value(self, key: str) -> bool:
        value = self.value(key)
        if not isinstance(value, bool):
            raise TypeError(f"{key} is not a bool flag")
        return value

    def set_flag(self, key: str, value: Any, context: CommandContext) -> FlagState:
        """Change one flag (a JSON-shaped value); no event when the value is unchanged."""
        spec = flag_spec(key, self._registry)
        return self._change(spec, spec.validate(value), context)

    def set_flag_from_text(self, key: str, text: str, context: CommandContext) -> FlagState:
        """Same as `set_flag`, for values typed on a command line."""
        spec = flag_spec(key, self._registry)
        return self._change(spec, spec.parse_text(text), context)

    def _change(self, spec: FlagSpec, value: FlagValue, context: CommandContext) -> FlagState:
        if not context.reason.strip():
            raise MissingReason("a reason is required to change a flag (it goes in the audit)")
        self._write(spec.scope, lambda flags: flags.change_flag(spec, value), context)
        return FlagState(spec, value)

    def adopt(self, key: str, stored: Any, stamp: tuple[str, str], context: CommandContext) -> bool:
        """A cluster flag changed on a paired pool: take it when newer (last writer wins on
        (changed_at, pool)); False when unknown here, invalid, older or the same."""
        spec = self._registry.get(key)
        if spec is None or spec.scope is not Scope.REPLICATED:
            return False
        try:
            value = spec.validate(from_event_value(spec, stored))
        except (InvalidFlagValue, ArithmeticError, ValueError, TypeError):
            return False
        return self._write(spec.scope, lambda flags: flags.adopt_flag(spec, value, stamp), context)

    def _write(
        self, scope: Scope, mutate: Callable[[FlagSet], bool], context: CommandContext
    ) -> bool:
        """Load the flag set, `mutate` it and store it; False when `mutate` changed nothing.

        Every flag of a scope lives in one aggregate, so writers of this process take turns
        (concurrent requests would otherwise mostly conflict and redo their work), and the
        writes that queued up while one save ran go into the next save together: one event
        each, with its own actor and reason, one round trip and one disk flush for all."""
        mine = _QueuedWrite(mutate, context)
        with self._queue_lock:
            self._queued[scope].append(mine)
        with self._write_locks[scope]:
            if not mine.done:
                with self._queue_lock:
                    batch, self._queued[scope] = self._queued[scope], []
                self._write_batch(scope, batch)
        if mine.error is not None:
            raise mine.error
        return mine.changed

    def _write_batch(self, scope: Scope, batch: list[_QueuedWrite]) -> None:
        try:
            for attempt in range(CONFLICT_RETRIES):
                # The set this process stored last is current unless another process wrote
                # since: then storing conflicts, and the retry reloads it. "No change" is only
                # believed of a fresh load.
                flags = self._written.pop(scope, None)
                changed = self._apply(flags, batch) if flags is not None else []
                if flags is None or not all(changed):
                    flags = self._load(scope, fresh=True)
                    if flags is None:  # created by (and recorded as) the first write's command
                        with recording(batch[0].context, self._store.pool_id):
                            flags = self._new_set(scope)
                    changed = self._apply(flags, batch)
                try:
                    if any(changed):
                        self._store.store(flags)
                        self._written[scope] = flags
                except ConcurrencyConflict:
                    if attempt == CONFLICT_RETRIES - 1:
                        raise
                    continue
                finally:
                    self._forget(scope)  # a read that raced the write is not kept
                if any(changed) and self._cache_seconds:
                    # Readers get a copy of what was just stored (not the set the next write
                    # changes in place) instead of each loading it again.
                    self._cached[scope] = (time.monotonic(), copy.deepcopy(flags))
                for write, did in zip(batch, changed, strict=True):
                    write.changed = did
                return
        except Exception as error:
            for write in batch:
                write.error = error
        finally:
            for write in batch:
                write.done = True

    def _apply(self, flags: FlagSet, batch: list[_QueuedWrite]) -> list[bool]:
        changed = []
        for write in batch:
            with recording(write.context, self._store.pool_id):
                changed.append(write.mutate(flags))
        return changed

    def _new_set(self, scope: Scope) -> FlagSet:
        kind = PoolSettings if scope is Scope.LOCAL else ClusterSettings
        return kind(pool_id=self._store.pool_id)

    def _load(self, scope: Scope, fresh: bool = False) -> FlagSet | None:
        """The flag set; a write loads it `fresh` (and the next read reloads it)."""
        if fresh:
            self._forget(scope)
        elif self._cache_seconds:
            cached = self._cached.get(scope)
            if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
                return cached[1]
        generation = self._generation
        kind: type[FlagSet] = PoolSettings if scope is Scope.LOCAL else ClusterSettings
        try:
            flags: FlagSet | None = self._store.load(kind.create_id(self._store.pool_id), kind)
        except NotFound:
            flags = None
        if self._cache_seconds and not fresh and generation == self._generation:
            self._cached[scope] = (time.monotonic(), flags)
        return flags

    def _forget(self, scope: Scope) -> None:
        self._generation += 1
        self._cached.pop(scope, None)

    @staticmethod
    def _value(flags: FlagSet | None, spec: FlagSpec) -> FlagValue:
        return spec.default if flags is None else flags.value_of(spec)
