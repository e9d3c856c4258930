"""The dashboard at `GET /`: three static files shipped in the package (syncer/api/dashboard/),
no build step, no CDN. The page itself needs no key; its data calls go to /api/v1 with the
key the operator gives once (kept in the browser's session storage).

Kept out of the OpenAPI document: it is a page, not part of the API.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, FastAPI, HTTPException, Response

FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
         "style.css": "text/css; charset=utf-8"}
# Everything from this origin only; the key never leaves it (no referrer, no framing).
HEADERS = {"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
                                      " connect-src 'self'; form-action 'self'; base-uri 'none';"
                                      " frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "Cache-Control": "no-cache"}


def asset(name: str) -> bytes:
    """One of the dashboard's files, as shipped in the package."""
    return resources.files("syncer.api").joinpath("dashboard", name).read_bytes()


def _answer(name: str) -> Response:
    return Response(asset(name), media_type=FILES[name], headers=HEADERS)


router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> Response:
    return _answer("index.html")


@router.get("/dashboard/{name}")
def dashboard_file(name: str) -> Response:
    if name not in FILES:  # the app's 404: the error envelope, like any unknown route
        raise HTTPException(404)
    return _answer(name)


def mount(app: FastAPI) -> None:
    """Serve the dashboard from `app`: `GET /` and its two files under /dashboard/."""
    app.include_router(router)
