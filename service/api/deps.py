"""Shared dependencies and parameters of the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from service.auth import ADMIN, AUTHORING, EDITORIAL, EVERYONE, RESEARCH, STAFF, require
from service.models.users import User

Limit = Annotated[int, Query(ge=1, le=1000, description="Page size")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip")]

AnyUser = Annotated[User, Depends(require(*EVERYONE))]
Researcher = Annotated[User, Depends(require(*RESEARCH))]
Editor = Annotated[User, Depends(require(*EDITORIAL))]
Author = Annotated[User, Depends(require(*AUTHORING))]
Staff = Annotated[User, Depends(require(*STAFF))]
Admin = Annotated[User, Depends(require(*ADMIN))]
