"""`sourcebook` commands for the workbench area."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main CLI."""
    return None
