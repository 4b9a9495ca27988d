"""The audit log, read page by page: what oversight (auditors and supervisors) checks the system's use against.

Reading it is itself audited, like every request (by the gate). Entries hold ids, digests and
pseudonyms rather than faces or reasons in full; the alert and its adjudications are at /alerts.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from cluster.api import schemas
from cluster.api.auth import Overseer
from cluster.api.services import ControlRoomServices, services
from cluster.audit.actions import AuditAction

MAX_PAGE = 500

router = APIRouter(tags=["audit"])

Services = Annotated[ControlRoomServices, Depends(services)]


@router.get(
    "/audit", response_model=schemas.AuditPageOut, summary="Audit log entries, oldest first (auditor, supervisor)"
)
def read_audit_log(
    caller: Overseer,
    svc: Services,
    after: Annotated[
        int, Query(ge=0, le=schemas.MAX_EVENT_ID, description="Entries after this seq (0: from the start).")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    action: Annotated[list[AuditAction], Query(description="Repeat for several actions; none: any.")] = [],  # noqa: B006
) -> schemas.AuditPageOut:
    head = svc.audit.head().seq
    entries = svc.audit.entries(after_seq=after, limit=limit + 1, actions=action)
    return schemas.audit_page(entries[:limit], more=len(entries) > limit, head_seq=head)
