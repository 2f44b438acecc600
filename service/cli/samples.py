"""`sourcebook samples DIR`: the files the README walkthrough uses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service import config  # config.get_settings at call time: tests replace it
from service.cli.common import fail


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main CLI."""

    @app.command("samples")
    def samples_command(
        directory: Annotated[Path, typer.Argument(help="Folder to write into (created)",
                                                  file_okay=False)],
        force: Annotated[bool, typer.Option(help="Overwrite sample files already there")
                         ] = False,
    ) -> None:
        """Write sample recordings, a transcript, an outline, a draft and a release."""
        # The sample builder (text-to-speech, pinyin) loads only when samples are made.
        from service.samples import SampleError, default_seeds_dir, write_samples

        # Only the seeds setting is read: samples touch no database and no storage folder.
        seeds = config.get_settings().seeds_dir or default_seeds_dir()
        try:
            written = write_samples(directory, seeds_dir=seeds, force=force)
        except SampleError as exc:
            fail(str(exc))
            return
        width = max(len(str(w.path)) for w in written)
        for w in written:
            typer.echo(f"{w.path!s:<{width}}  {w.what}")
