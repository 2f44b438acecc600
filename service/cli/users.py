"""`sourcebook users`: create users, issue, list, revoke tokens, disable and enable."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlmodel import Session, select

from service import auth
from service.cli.common import fail, open_archive
from service.config import get_settings
from service.crud import audit
from service.errors import Conflict
from service.models.users import Role, User

users_app = typer.Typer(help="Manage users and their API tokens.", no_args_is_help=True)


@users_app.command("create")
def users_create(
    name: str,
    role: Annotated[str, typer.Option(help="researcher, author, editor or admin")],
) -> None:
    """Create a user; the token is printed once, as the last line."""

    try:
        role_value = Role(role)
    except ValueError:
        fail(f"unknown role {role!r}; use one of: researcher, author, editor, admin")
        return
    settings = get_settings()
    engine = open_archive(settings)
    with Session(engine) as session:
        try:
            user, token = auth.create_user(
                session, key=settings.token_key(), name=name, role=role_value,
                ttl=settings.token_ttl,
            )
        except Conflict as exc:
            fail(str(exc))
            return
        audit.record(session, actor=None, action="create", object_type="user",
                     object_id=user.id, summary=f"role {role_value.value} (cli)")
        session.commit()
        typer.echo(f"created user {user.name!r} (id {user.id}, role {role_value.value}).")
        typer.echo("This token is shown once; keep it secret:")
        typer.echo(token)


@users_app.command("token")
def users_token(name: str) -> None:
    """Issue an additional token for an existing user (printed once, last line)."""

    settings = get_settings()
    engine = open_archive(settings)
    with Session(engine) as session:
        user = session.exec(select(User).where(User.name == name)).first()
        if user is None:
            fail(f"no user named {name!r}; create one with `sourcebook users create`")
            return
        token = auth.issue_token(session, key=settings.token_key(), user=user, label="cli",
                                 ttl=settings.token_ttl)
        audit.record(session, actor=None, action="token", object_type="user", object_id=user.id)
        session.commit()
        typer.echo(token)


@users_app.command("list")
def users_list() -> None:
    """List users: id, name, role, state and last use."""

    settings = get_settings()
    with Session(open_archive(settings)) as session:
        for a in auth.accounts(session, ttl=settings.token_ttl):
            used = f"{a.last_used_at:%Y-%m-%d %H:%M}" if a.last_used_at else "never used"
            state = "disabled" if a.disabled else "active"
            typer.echo(f"{a.id}\t{a.name}\t{a.role.value}\t{state}\t{used}\t"
                       f"{a.active_tokens} token(s)")


def _change_user(name: str, what: str) -> None:
    """revoke, disable or enable the user ``name``, audited as done from the CLI."""

    settings = get_settings()
    engine = open_archive(settings)
    with Session(engine) as session:
        user = session.exec(select(User).where(User.name == name)).first()
        if user is None:
            fail(f"no user named {name!r}; `sourcebook users list` shows who there is")
            return
        if what == "revoke":
            count = auth.revoke_tokens(session, user=user)
            summary = f"{count} token(s) revoked (cli)"
            message = (f"revoked {count} token(s) of {name!r}; issue a new one with "
                       f"`sourcebook users token {name}`.")
        else:
            # The CLI is the way back in, so it may disable the last admin too.
            disabled = what == "disable"
            changed = user.disabled != disabled
            user.disabled = disabled
            session.add(user)
            summary = f"{what}d (cli)"
            message = (f"{name!r} is {what}d" if changed else f"{name!r} was already {what}d")
            if disabled:
                message += "; their tokens give 401 until `sourcebook users enable` is run."
        audit.record(session, actor=None, action="revoke" if what == "revoke" else "update",
                     object_type="user", object_id=user.id, summary=summary)
        session.commit()
        typer.echo(message)


@users_app.command("revoke")
def users_revoke(name: str) -> None:
    """Revoke every token of a user (API tokens and web sign-ins)."""
    _change_user(name, "revoke")


@users_app.command("disable")
def users_disable(name: str) -> None:
    """Disable a user: their tokens give 401 (and say why) until enabled again."""
    _change_user(name, "disable")


@users_app.command("enable")
def users_enable(name: str) -> None:
    """Enable a disabled user again (revoked tokens stay revoked)."""
    _change_user(name, "enable")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
