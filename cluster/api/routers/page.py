"""The control room page: three static files, served without a credential so the login form can show.

They carry no data: everything on the page comes from the API with the officer's token.
"""

from fastapi import APIRouter, Response

from cluster.control_room import PAGE_FILES, page_file

router = APIRouter(include_in_schema=False)


def _serve(path: str):
    name, media_type = PAGE_FILES[path]

    def serve() -> Response:
        return Response(page_file(name), media_type=media_type)

    serve.__name__ = f"page_{name.replace('.', '_')}"
    return serve


for _path in PAGE_FILES:
    router.add_api_route(_path, _serve(_path), methods=["GET"])
