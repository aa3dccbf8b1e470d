"""The first-boot wizard. Step one needs no session; the others need the new admin's."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from application.onboarding import OnboardingState
from web.deps import CurrentAdmin, Web
from web.routers.auth import admin_public, open_session
from web.schemas import (
    FirstAdminCreate,
    FirstAdminCreated,
    OnboardingPublic,
    OnboardingStepPublic,
    PoolNaming,
    PublicUrlSetting,
    SessionPublic,
)

router = APIRouter(prefix="/api/onboarding", tags=["onboarding"])
REASON = "first-boot onboarding"


def onboarding_public(state: OnboardingState) -> OnboardingPublic:
    return OnboardingPublic(
        completed=state.completed,
        has_admin=state.has_admin,
        next_step=state.next_step,
        steps=[OnboardingStepPublic(**step.__dict__) for step in state.steps],
        **state.profile,
    )


@router.get("", operation_id="get_onboarding", response_model=OnboardingPublic)
def get_onboarding(*, web: Web) -> OnboardingPublic:
    """Where the wizard stands: every step and its status."""
    return onboarding_public(web.pool.onboarding.state())


@router.post(
    "/admin",
    operation_id="create_first_admin",
    response_model=FirstAdminCreated,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The first admin already exists"}},
)
def create_first_admin(
    *, body: FirstAdminCreate, request: Request, response: Response, web: Web
) -> FirstAdminCreated:
    """Step 1: create the first admin, who is logged in at once."""
    pool = web.pool
    pool.onboarding.create_first_admin(body.email, body.display_name, body.password)
    client = request.client.host if request.client else "unknown"
    logged_in = pool.admins.login(body.email, body.password, client)
    token = open_session(web, response, request, logged_in.session_id)
    return FirstAdminCreated(
        onboarding=onboarding_public(pool.onboarding.state()),
        session=SessionPublic(admin=admin_public(logged_in.admin), csrf_token=token),
    )


@router.post("/pool", operation_id="name_pool", response_model=OnboardingPublic)
def name_pool(*, body: PoolNaming, current: CurrentAdmin, web: Web) -> OnboardingPublic:
    """Step 2: the pool's name and its site."""
    web.pool.onboarding.name_pool(body.pool_name, body.site, current.context(REASON))
    return onboarding_public(web.pool.onboarding.state())


@router.post("/public-url", operation_id="set_public_url", response_model=OnboardingPublic)
def set_public_url(*, body: PublicUrlSetting, current: CurrentAdmin, web: Web) -> OnboardingPublic:
    """Step 3: the URL browsers and peer pools use to reach this pool."""
    web.pool.onboarding.set_public_url(body.public_url, current.context(REASON))
    return onboarding_public(web.pool.onboarding.state())


@router.post("/identity", operation_id="generate_identity", response_model=OnboardingPublic)
def generate_identity(*, current: CurrentAdmin, web: Web) -> OnboardingPublic:
    """Step 4: generate the pool's Ed25519 key pair (private key sealed in the data dir)."""
    web.pool.onboarding.generate_identity(current.context(REASON))
    return onboarding_public(web.pool.onboarding.state())


@router.post(
    "/steps/{step}/skip", operation_id="skip_onboarding_step", response_model=OnboardingPublic
)
def skip_step(*, step: str, current: CurrentAdmin, web: Web) -> OnboardingPublic:
    """Skip an optional step (SMTP, branding, license, pairing); do it later from its page."""
    web.pool.onboarding.skip(step, current.context(REASON))
    return onboarding_public(web.pool.onboarding.state())


@router.post("/complete", operation_id="complete_onboarding", response_model=OnboardingPublic)
def complete(*, current: CurrentAdmin, web: Web) -> OnboardingPublic:
    """Finish the wizard (every required step must be done)."""
    web.pool.onboarding.complete(current.context(REASON))
    return onboarding_public(web.pool.onboarding.state())
