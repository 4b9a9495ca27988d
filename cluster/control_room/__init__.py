"""The control room page: plain HTML, CSS and JavaScript, no build step, nothing fetched from elsewhere.

`PAGE_FILES` maps each URL path the API serves without a credential to its file and type.
"""

from importlib.resources import files

PAGE_FILES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}


def page_file(name: str) -> bytes:
    return files(__name__).joinpath(name).read_bytes()
