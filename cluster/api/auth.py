"""Role checks for routes: each route depends on the one access it needs, which names the roles that have it.

- `Reader`: the records both live work and oversight read (alerts and their adjudications, deployments'
  status and cameras, who is signed in): operator, supervisor, auditor.
- `Operator`: live work (faces, the live stream, adjudication, social search): operator, supervisor.
- `Overseer`: oversight's own reading (the audit log, deployments' authorisation, who has access):
  supervisor, auditor.
- `Supervisor`: every other change (holds, purges, users and keys): supervisor only.

An auditor therefore reads what an oversight body must see and nothing an operator needs only to
act (no face crop, no watchlist photo, no live stream), and changes nothing. Every route declares one
of these; tests enumerate the app's routes and check what each role gets from each
(tests/api/test_auth.py, tests/api/test_auditor.py), so a new route cannot be forgotten.

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
    description="An API key from `lfr serve add-user NAME --role operator|supervisor|auditor`, as a bearer token.",
)


def principal(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
) -> Principal:
    """The authenticated caller; 401 if the gate let the request through without one (a public path)."""
    caller = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(caller, Principal):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "no credential", headers={"WWW-Authenticate": "Bearer"})
    return caller


def _requiring(access: str, *roles: Role):
    allowed = frozenset(roles)
    needed = " or ".join(role.value for role in roles)

    def check(caller: Annotated[Principal, Depends(principal)]) -> Principal:
        if caller.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"{caller.name} is {caller.role}; this needs the {needed} role"
            )
        return caller

    check.__name__ = f"require_{access}"
    return check


reader = _requiring("reader", Role.OPERATOR, Role.SUPERVISOR, Role.AUDITOR)
operator = _requiring("operator", Role.OPERATOR, Role.SUPERVISOR)
overseer = _requiring("overseer", Role.SUPERVISOR, Role.AUDITOR)
supervisor = _requiring("supervisor", Role.SUPERVISOR)

Reader = Annotated[Principal, Depends(reader)]
Operator = Annotated[Principal, Depends(operator)]
Overseer = Annotated[Principal, Depends(overseer)]
Supervisor = Annotated[Principal, Depends(supervisor)]
