"""The API's documentation, served by the API itself: Swagger UI at `/docs`, ReDoc at `/redoc`.

Their scripts and styles come from the `fastapi-offline` package, mounted at
`/static-offline-docs`, so no page asks a CDN for anything and the docs work on machines without
the internet. The pages are sent with a Content-Security-Policy that lets them load nothing from
another host: ReDoc's "powered by" logo, which its script would fetch from its maker's site, is
simply not shown.

Also here: the OpenAPI's description and its tags, one per audience.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static-offline-docs"
ASSETS_PACKAGE = ("fastapi_offline", "static")
PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'none'"
)
"""Only this API: the pages' own inline start-up scripts and styles, and their assets."""
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
"""No validator badge, which Swagger UI would fetch from swagger.io."""

DESCRIPTION = """\
Producers send SMS, MMS and voice jobs; each is stored before its id is answered, then sent by
the workers, and every recipient is followed to its delivery report.

**Authentication**: an API key as `Authorization: Bearer <key>` (HERALD_API_KEYS, or one
`herald keys create NAME` printed). Without any key configured the API answers requests without
one, and only on loopback. The vendor callbacks authenticate pushes their own way.

**Messages**: a message is a job, one request (one content to one or more recipients). Find
jobs with `GET /v1/messages` (filters, newest first); each comes with its counts by recipient
status and its progress. A job's recipients are read a page at a time from
`GET /v1/messages/{job_id}/recipients`: lists are paged with an opaque cursor (`after`, given
back as `next`), never all at once.

**Errors** are `{"detail": "..."}`; a request that breaks a rule is answered 422 with one entry
per broken rule, and nothing is stored.

**Times** are ISO 8601 with an offset, both ways: a time sent without one is refused, and every
time answered is in UTC (`2026-11-11T02:00:00Z`). Only the `herald` command shows times in a
display zone (HERALD_DISPLAY_TZ).
"""
TAGS = [
    {
        "name": "producers",
        "description": "Send SMS, MMS (also 5C personalised) and voice jobs, find them, read "
        "a job's counts, progress and recipients, cancel what is not sent yet. An API key is "
        "needed.",
    },
    {
        "name": "operators",
        "description": "Suppressions (numbers that receive no marketing), replies and MO "
        "messages from handsets, vendor products and their balances. An API key is needed.",
    },
    {
        "name": "vendor callbacks",
        "description": "Where the vendors push delivery reports, replies and audit results; "
        "each URL is registered with its vendor. Veesing's carry a secret token in the path, "
        "Chuangrui's a signature or a pwd. Every push is stored before `ok` is answered, then "
        "applied by a worker. Not for producers.",
    },
    {
        "name": "health",
        "description": "Open to anyone: what a load balancer or supervisor asks.",
    },
]


def serve_docs(api: FastAPI) -> None:
    """Mount the assets and add `/docs` and `/redoc` (the API is made with both set to None)."""
    api.mount(ASSETS_URL, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")
    openapi_url = api.openapi_url or "/openapi.json"

    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{api.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )
        page.headers["Content-Security-Policy"] = PAGE_POLICY
        return page

    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{api.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = PAGE_POLICY
        return page

    api.add_api_route("/docs", swagger_ui, include_in_schema=False)
    api.add_api_route("/redoc", redoc, include_in_schema=False)
