"""``capplan schema``: the JSON Schema of instance files, for editors and other tools."""

from __future__ import annotations

import sys

from ..instance.schema import SCHEMA_PATH, schema_text
from .app import app


@app.command(help="Print the JSON Schema (draft 2020-12) of instance files.\n\n"
             f"The repository keeps it in {SCHEMA_PATH} (regenerate it with `capplan schema > {SCHEMA_PATH}`); "
             "editors with a YAML language server use it for completion, hover docs and inline errors.")
def schema() -> None:
    sys.stdout.write(schema_text())
