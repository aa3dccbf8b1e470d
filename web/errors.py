"""Domain errors to HTTP, in one place: every error body is `{"detail", "code"}`."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from application.admins import EmailTaken, InvalidCredentials, LoginThrottled, NotAuthenticated
from application.catalog import (
    CatalogReadOnly,
    DuplicateModel,
    InvalidUpload,
    NoWorkerAvailable,
    UploadBusy,
    UploadOffsetMismatch,
)
from application.mail import SmtpNotConfigured
from application.onboarding import InvalidOnboardingInput
from application.workers import DuplicateWorker, NotOllama, WorkerUnreachable
from domain.admins import AdminDisabled, AdminRuleViolated
from domain.catalog import InvalidModel, ModelStateError
from domain.errors import (
    ConcurrencyConflict,
    DomainError,
    InvalidActor,
    InvalidFlagValue,
    MissingReason,
    NotFound,
    UnknownFlag,
)
from domain.federation import PairingRefused, PeerStateError
from domain.incidents import IncidentStateError, InvalidIncident
from domain.mail import InvalidMailSettings, MailStateError
from domain.migrations import InvalidMigration, MigrationStateError
from domain.onboarding import AlreadyOnboarded, OnboardingError
from domain.passwords import WeakPassword
from domain.workers import InvalidWorker, WorkerStateError

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    NotFound: 404,
    UnknownFlag: 404,
    ConcurrencyConflict: 409,
    EmailTaken: 409,
    AlreadyOnboarded: 409,
    OnboardingError: 409,
    AdminRuleViolated: 409,
    InvalidFlagValue: 422,
    MissingReason: 422,
    InvalidActor: 422,
    WeakPassword: 422,
    InvalidOnboardingInput: 422,
    InvalidCredentials: 401,
    NotAuthenticated: 401,
    AdminDisabled: 403,
    LoginThrottled: 429,
    DuplicateWorker: 409,
    WorkerStateError: 409,
    InvalidWorker: 422,
    WorkerUnreachable: 422,
    NotOllama: 422,
    InvalidUpload: 422,
    UploadOffsetMismatch: 409,
    UploadBusy: 409,
    DuplicateModel: 409,
    NoWorkerAvailable: 409,
    InvalidModel: 422,
    ModelStateError: 409,
    PairingRefused: 422,
    PeerStateError: 409,
    InvalidIncident: 422,
    IncidentStateError: 409,
    InvalidMigration: 422,
    MigrationStateError: 409,
    InvalidMailSettings: 422,
    MailStateError: 409,
    SmtpNotConfigured: 409,
    CatalogReadOnly: 409,
}


def error_body(detail: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"detail": detail, "code": code, **extra}


def status_for(error: DomainError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]
    return 400


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> JSONResponse:
        headers = {}
        if isinstance(error, LoginThrottled):
            headers["Retry-After"] = str(error.retry_after)
        if isinstance(error, UploadOffsetMismatch):
            headers["Upload-Offset"] = str(error.offset)
        if isinstance(error, NotAuthenticated):
            headers["WWW-Authenticate"] = 'Cookie realm="archipel"'
        return JSONResponse(
            error_body(error.detail, error.code), status_code=status_for(error), headers=headers
        )

    @app.exception_handler(psycopg.DataError)
    async def data_error(request: Request, error: psycopg.DataError) -> JSONResponse:
        # e.g. a NUL character in a filter: PostgreSQL text cannot hold it.
        return JSONResponse(
            error_body("the request holds characters this field cannot take", "invalid_input"),
            status_code=422,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]),
                "message": e["msg"],
            }
            for e in error.errors()
        ]
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return JSONResponse(
            error_body(detail, "validation_error", errors=problems), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        detail = error.detail if isinstance(error.detail, str) else "request refused"
        return JSONResponse(
            error_body(detail, code),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )
