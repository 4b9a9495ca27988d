"""Who is signed in, and the users and API keys of the control room (supervisors change them, auditors read them)."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status

from cluster.api import schemas
from cluster.api.auth import Overseer, Reader, Supervisor
from cluster.api.keys import USER_NAME_PATTERN
from cluster.api.services import ControlRoomServices, services
from cluster.control_room.config import MAX_KEY_LIFETIME_DAYS

router = APIRouter(tags=["users"])

Services = Annotated[ControlRoomServices, Depends(services)]
UserName = Annotated[str, Path(pattern=USER_NAME_PATTERN)]


@router.get("/me", response_model=schemas.Identity, summary="Who the credential belongs to (the page's sign-in)")
def me(caller: Reader) -> schemas.Identity:
    return schemas.identity(caller)


@router.get("/users", response_model=list[schemas.UserOut], summary="Users and their active keys (supervisor, auditor)")
def list_users(caller: Overseer, svc: Services) -> list[schemas.UserOut]:
    return [schemas.user(account) for account in svc.keys.users()]


@router.post(
    "/users",
    response_model=schemas.IssuedKeyOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a user with a first key (supervisor)",
)
def add_user(caller: Supervisor, svc: Services, body: schemas.NewUserRequest) -> schemas.IssuedKeyOut:
    return schemas.issued_key(
        svc.keys.add_user(body.name, body.role, actor=caller.name, lifetime_days=body.key_lifetime_days)
    )


@router.post(
    "/users/{name}/keys",
    response_model=schemas.IssuedKeyOut,
    status_code=status.HTTP_201_CREATED,
    summary="Issue another key (supervisor)",
)
def issue_key(
    caller: Supervisor,
    svc: Services,
    name: UserName,
    lifetime_days: Annotated[
        int | None, Query(ge=1, le=MAX_KEY_LIFETIME_DAYS, description="Days the key is accepted; none: the default.")
    ] = None,
) -> schemas.IssuedKeyOut:
    return schemas.issued_key(svc.keys.issue_key(name, actor=caller.name, lifetime_days=lifetime_days))


@router.post("/users/{name}/revoke", response_model=schemas.RevokedOut, summary="Revoke a user's keys (supervisor)")
def revoke(caller: Supervisor, svc: Services, name: UserName) -> schemas.RevokedOut:
    if name == caller.name:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "you cannot revoke your own keys: ask another supervisor, or use the CLI"
        )
    return schemas.RevokedOut(name=name, revoked_keys=svc.keys.revoke(name, actor=caller.name))
