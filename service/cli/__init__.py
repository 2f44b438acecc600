"""The ``sourcebook`` command line: one module per command group.

Each module's ``register`` adds its commands; the order here is the order of
``sourcebook --help``. Commands import what they need when they run, so that
``--help`` and a mistyped option answer at once instead of after loading the app,
the database layer and the pipelines.
"""

from __future__ import annotations

import typer

from service.cli import (
    audit,
    export,
    models,
    ops,
    samples,
    server,
    transcribe,
    users,
    verify,
    voices,
)

app = typer.Typer(help="Sourcebook: an interview archive for non-fiction writers.",
                  no_args_is_help=True)


def _register() -> None:
    for group in (server, transcribe, export, verify, audit, ops, users, models, voices,
                  samples):
        group.register(app)


_register()
