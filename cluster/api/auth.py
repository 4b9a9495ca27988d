"""Role checks for routes: `Depends(operator)` to view and adjudicate, `Depends(supervisor)` for the rest.

The gate (`cluster.api.gate`) has already authenticated the request; these read who it is and
refuse (403) a role that does not reach. They also declare the bearer scheme, so the OpenAPI
schema tells clients how to authenticate.
"""

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cluster.api.gate import PRINCIPAL_SCOPE_KEY
from cluster.api.keys import Principal, Role

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `lfr serve add-user NAME --role operator|supervisor`, as a bearer token.",
)


def principal(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
) -> Principal:
    """The authenticated caller; 401 if the gate let the request through without one (a public path)."""
    caller = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(caller, Principal):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "no credential", headers={"WWW-Authenticate": "Bearer"})
    return caller


def _requiring(role: Role):
    def check(caller: Annotated[Principal, Depends(principal)]) -> Principal:
        if not caller.role.includes(role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"{caller.name} is {caller.role}; this needs the {role} role"
            )
        return caller

    check.__name__ = f"require_{role}"
    return check


operator = _requiring(Role.OPERATOR)
supervisor = _requiring(Role.SUPERVISOR)

Operator = Annotated[Principal, Depends(operator)]
Supervisor = Annotated[Principal, Depends(supervisor)]
