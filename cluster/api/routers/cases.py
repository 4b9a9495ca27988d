"""Cases: the results of retrospective and social-media searches, whose candidates officers confirm or reject.

Like alerts: anyone who reads the records (operator, supervisor, auditor) lists and reads cases; only
those who do live work (operator, supervisor) see a candidate's face and decide it; only a supervisor
holds a case past its retention. Every request is audited by the gate, every decision and hold by the
case store in its own transaction.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from cluster.api import schemas
from cluster.api.auth import Operator, Reader, Supervisor
from cluster.api.services import ControlRoomServices, services
from cluster.cases.model import ItemState
from cluster.cases.store import MAX_LIST

JPEG = "image/jpeg"

router = APIRouter(tags=["cases"])

Services = Annotated[ControlRoomServices, Depends(services)]
CaseId = Annotated[str, Path(min_length=1, max_length=200, description="The case's id.")]
Number = Annotated[int, Path(ge=1, le=2**31 - 1, description="The item's number in its case, from 1.")]
JPEG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {JPEG: {"schema": {"type": "string", "format": "binary"}}}}
}


@router.get("/cases", response_model=schemas.CaseListOut, summary="List cases, newest first")
def list_cases(
    caller: Reader, svc: Services, limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 50
) -> schemas.CaseListOut:
    return schemas.CaseListOut(cases=[schemas.case_summary(case) for case in svc.cases.list(limit)])


@router.get("/cases/{case_id}", response_model=schemas.CaseDetail, summary="One case with its candidates")
def get_case(caller: Reader, svc: Services, case_id: CaseId) -> schemas.CaseDetail:
    return schemas.case_detail(svc.cases.get(case_id))


@router.get(
    "/cases/{case_id}/items/{number}/crop",
    response_class=Response,
    responses=JPEG_RESPONSE,
    summary="A candidate's face crop (JPEG)",
)
def item_crop(caller: Operator, svc: Services, case_id: CaseId, number: Number) -> Response:
    return Response(svc.cases.crop(case_id, number), media_type=JPEG)


@router.post(
    "/cases/{case_id}/items/{number}/confirm", response_model=schemas.CaseDetail, summary="Confirm a candidate"
)
def confirm_item(
    caller: Operator, svc: Services, case_id: CaseId, number: Number, body: schemas.DecisionRequest
) -> schemas.CaseDetail:
    return schemas.case_detail(svc.cases.decide(case_id, number, ItemState.CONFIRMED, caller.name, body.reason))


@router.post(
    "/cases/{case_id}/items/{number}/reject", response_model=schemas.CaseDetail, summary="Reject a candidate as false"
)
def reject_item(
    caller: Operator, svc: Services, case_id: CaseId, number: Number, body: schemas.DecisionRequest
) -> schemas.CaseDetail:
    return schemas.case_detail(svc.cases.decide(case_id, number, ItemState.REJECTED, caller.name, body.reason))


@router.post("/cases/{case_id}/hold", response_model=schemas.CaseDetail, summary="Keep past retention (supervisor)")
def hold_case(caller: Supervisor, svc: Services, case_id: CaseId, body: schemas.HoldRequest) -> schemas.CaseDetail:
    return schemas.case_detail(svc.cases.hold(case_id, caller.name, body.reason))


@router.post("/cases/{case_id}/release", response_model=schemas.CaseDetail, summary="End a hold (supervisor)")
def release_case(caller: Supervisor, svc: Services, case_id: CaseId, body: schemas.HoldRequest) -> schemas.CaseDetail:
    return schemas.case_detail(svc.cases.release(case_id, caller.name, body.reason))
