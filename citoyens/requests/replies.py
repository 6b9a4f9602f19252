"""What families wrote on their requests and no agent has answered yet (the staff home's
« Réponses des familles »). Plain queries, scoped by `services.scope.request_filter`.

A family's message counts as answered once a member of staff writes to the family or
changes the request's status after it; an internal note answers nobody. Only requests
still open are listed: a closed one waits for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import aliased

from citoyens.accounts.models import User
from citoyens.extensions import db
from citoyens.households.directory import household_names
from citoyens.requests.models import OPEN_STATUSES, Request, RequestEvent
from citoyens.services.scope import request_filter

HOME_REPLIES = 8
EXCERPT = 200  # characters of the message shown


@dataclass
class FamilyReply:
    request_id: int
    request_title: str
    household_name: str
    author: str
    at: datetime
    body: str

    @property
    def excerpt(self) -> str:
        text = " ".join(self.body.split())
        return text if len(text) <= EXCERPT else text[: EXCERPT - 1].rstrip() + "…"


def _conditions(user, service_id: int | None) -> list:
    later = aliased(RequestEvent)
    agent = aliased(User)
    answered = exists(
        select(later.id)
        .join(agent, agent.id == later.actor_id)
        .where(
            later.request_id == RequestEvent.request_id,
            later.id > RequestEvent.id,
            later.kind.in_(("message", "status")),
            agent.role.in_(("staff", "admin")),
        )
    )
    conditions = [
        RequestEvent.kind == "message",
        User.role == "parent",
        Request.status.in_(OPEN_STATUSES),
        request_filter(user),
        ~answered,
    ]
    if service_id is not None:
        conditions.append(Request.service_id == service_id)
    return conditions


def waiting_replies(
    user, service_id: int | None = None, limit: int = HOME_REPLIES
) -> tuple[list[FamilyReply], int]:
    """The latest unanswered family messages the user may see (newest first) and how many
    there are in all. Three queries, whatever their number."""

    def base(*columns):
        return (
            select(*columns)
            .select_from(RequestEvent)
            .join(Request, Request.id == RequestEvent.request_id)
            .join(User, User.id == RequestEvent.actor_id)
            .where(*_conditions(user, service_id))
        )

    total = db.session.scalar(base(func.count(RequestEvent.id))) or 0
    if not total:
        return [], 0
    rows = db.session.execute(
        base(
            Request.id,
            Request.title,
            Request.household_id,
            User.first_name,
            User.last_name,
            RequestEvent.created_at,
            RequestEvent.body,
        )
        .order_by(RequestEvent.created_at.desc(), RequestEvent.id.desc())
        .limit(limit)
    ).all()
    names = household_names({row.household_id for row in rows})
    replies = [
        FamilyReply(
            request_id=row.id,
            request_title=row.title,
            household_name=names[row.household_id],
            author=f"{row.first_name} {row.last_name}",
            at=row.created_at,
            body=row.body or "",
        )
        for row in rows
    ]
    return replies, total
