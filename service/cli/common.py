"""What every command shares: the settings, and failing with a message and a code."""

from __future__ import annotations

import typer

from service.config import Settings, get_settings


def load_settings() -> Settings:
    settings = get_settings()
    settings.ensure_dirs()
    return settings


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)
