"""The API reference reader at `/api/docs`: Swagger UI served by the service itself.

Litestar's render plugins load their reader from a CDN, unpinned and without integrity,
so the page is blank offline and depends on a third party. Here the reader's files come
from the pinned `swagger-ui-py` wheel (PyPI), served under `/api/docs/assets/`; the page
loads nothing from elsewhere (no validator badge, no CDN favicon). "Try it out" sends the
session cookie and, on unsafe methods, the `X-CSRF-Token` header read from the CSRF cookie,
as the pages do.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

from litestar import Request, Router
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

from cortiware.auth.csrf import CSRF_HEADER

__all__ = ["ASSETS_PATH", "ASSET_FILES", "SwaggerReader", "reader_assets"]

ASSETS_PATH: Final = "/api/docs/assets"
ASSET_FILES: Final = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")
"""The reader's files, from the `swagger-ui-py` wheel (Swagger UI 5, which reads OpenAPI 3.1)."""
_ASSETS_DIR: Final = Path(str(files("swagger_ui").joinpath("static")))
_CSRF_COOKIES: Final = ("__Host-cw_csrf", "cw_csrf")


class SwaggerReader(OpenAPIRenderPlugin):
    """Swagger UI on the service's own copy of its files, with the CSRF header wired in."""

    def __init__(self, path: str = "/swagger") -> None:
        super().__init__(path=path, favicon='<link rel="icon" href="/static/favicon.svg">')

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The reader's HTML page; the document itself is fetched from `openapi.json`."""
        title = str(openapi_schema.get("info", {}).get("title", "API"))
        config = {
            "url": f"{request.app.openapi_config.path}/openapi.json",  # type: ignore[union-attr]
            "dom_id": "#swagger",
            "deepLinking": True,
            "validatorUrl": None,  # else Swagger UI asks validator.swagger.io for a badge
            "persistAuthorization": False,
        }
        script = f"""
const csrfCookies = {json.dumps(_CSRF_COOKIES)};
function csrfToken() {{
  for (const part of document.cookie.split("; ")) {{
    const [name, value] = part.split("=");
    if (csrfCookies.includes(name)) return decodeURIComponent(value);
  }}
  return undefined;
}}
window.ui = SwaggerUIBundle(Object.assign({json.dumps(config)}, {{
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "BaseLayout",
  requestInterceptor: (req) => {{
    const token = csrfToken();
    if (token && !["GET", "HEAD", "OPTIONS"].includes((req.method || "GET").toUpperCase())) {{
      req.headers[{json.dumps(CSRF_HEADER)}] = token;
    }}
    return req;
  }},
}}));
"""
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_escape(title)} reference</title>{self.favicon}
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<style>body {{ margin: 0; }}</style>
</head><body><main id="swagger"></main>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{ASSETS_PATH}/swagger-ui-standalone-preset.js"></script>
<script>{script}</script>
</body></html>"""
        return page.encode()


def reader_assets() -> Router:
    """`/api/docs/assets/<file>`: the reader's CSS and scripts, from the installed wheel."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[_ASSETS_DIR],
        include_in_schema=False,
        cache_control=None,
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
