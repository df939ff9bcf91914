"""Export the OpenAPI document generated from the application's routes.

    python -m cortiware.openapi docs/openapi.json

The service also serves it live at `/api/docs/openapi.json` (and a reader at `/api/docs`);
the committed copy lets reviewers see API changes in diffs, and a test keeps it current.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["render_openapi"]


def render_openapi() -> str:
    """The OpenAPI document as stable, pretty-printed JSON."""
    from cortiware.app import create_app
    from cortiware.settings import Settings

    app = create_app(Settings.from_env({}))
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the document to the path given (stdout when none)."""
    args = sys.argv[1:] if argv is None else argv
    text = render_openapi()
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
