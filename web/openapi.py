"""Print the OpenAPI document (no database needed): `python -m web.openapi`."""

from __future__ import annotations

import json
import sys
from typing import Any

from web.app import build_api


def openapi_document() -> dict[str, Any]:
    return build_api().openapi()


def main() -> None:
    sys.stdout.write(json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
