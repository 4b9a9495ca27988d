"""Social search: where a face appears across the ingested social-media posts, from a photo an officer uploads.

Live work, so operators and supervisors only: an auditor reads the case a search opens (Cases),
not the faces. The signed-in officer answers for the search and must give the reason for it; the
search opens a case of the posts found and is audited as `lfr social search` is
(`cluster.api.social_search`), and the gate audits the request as it does every other. A photo
cannot be searched with (empty, not an image, too many pixels, no face, several faces without one
chosen): 422 saying why, nothing searched. A body over serve.max_photo_bytes: 413. No gallery the
control room can open, or another search still running: 503 saying what to do.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile, status

from cluster.api import schemas
from cluster.api.auth import Operator
from cluster.api.services import ControlRoomServices, services
from cluster.cases.model import CaseAuthorisation

SEARCH_PATH = "/social/search"
MAX_FACE_INDEX = 1000
NOT_SET_UP = (
    "social search is not set up in this control room: `lfr serve` sets it up over the gallery of its configuration;"
    " meanwhile run `lfr social search` on the command line"
)

router = APIRouter(tags=["social"])

Services = Annotated[ControlRoomServices, Depends(services)]
RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "model": schemas.RefusalResponse,
        "description": "The photo cannot be searched with (why, as text), or a field is missing or invalid.",
    },
    503: {"model": schemas.ErrorResponse, "description": "No gallery to search, or another search still running."},
}


@router.post(
    SEARCH_PATH,
    response_model=schemas.SocialSearchOut,
    responses=RESPONSES,
    summary="Find the posts a face appears in (opens a case)",
)
def social_search(
    caller: Operator,
    svc: Services,
    photo: Annotated[UploadFile, File(description="A photo of the face to look for (JPEG, PNG, ...).")],
    reason: Annotated[
        str,
        Form(
            max_length=schemas.MAX_REASON_CHARS,
            description="Why the search is necessary and proportionate (the investigation); recorded with the case.",
        ),
    ],
    face: Annotated[
        int | None,
        Form(
            ge=0,
            le=MAX_FACE_INDEX,
            description="Which face of a group photo to search with (as `lfr faces` numbers"
            " them); none: the photo must show one face.",
        ),
    ] = None,
) -> schemas.SocialSearchOut:
    if not reason.strip():
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "a reason is required: say which investigation the search is for and why it is necessary",
        )
    if svc.social is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, NOT_SET_UP)
    authorisation = CaseAuthorisation(caller.name, reason)
    found = svc.social.search(photo.filename, photo.file.read(), authorisation=authorisation, face_index=face)
    return schemas.social_search_out(found)
