"""What a family and what staff see of messages. Plain queries, no HTTP; each page is
loaded in a fixed number of queries, whatever the number of messages or families."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import joinedload

from citoyens.extensions import db
from citoyens.messages.models import Message, MessageRecipient
from citoyens.pagination import QueuePage
from citoyens.services.models import Activity, Service
from citoyens.services.rules import service_ids_for
from citoyens.services.scope import may_act_for_service

FAMILY_PAGE_SIZE = 20
STAFF_PAGE_SIZE = 30


# --- Family -----------------------------------------------------------------------------------


@dataclass
class Received:
    """A message as the family sees it: what it says, from which service, whether read."""

    message: Message
    service_name: str
    read_at: datetime | None

    @property
    def unread(self) -> bool:
        return self.read_at is None


@dataclass
class Inbox:
    items: list[Received]
    total: int
    unread: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def inbox(household_id: int, page: int = 1, per_page: int = FAMILY_PAGE_SIZE) -> Inbox:
    """The household's messages, newest first, one page at a time. Two queries."""
    total, unread = db.session.execute(
        select(
            func.count(MessageRecipient.id),
            func.count(case((MessageRecipient.read_at.is_(None), 1))),
        ).where(MessageRecipient.household_id == household_id)
    ).one()
    last_page = max(1, -(-total // per_page))
    page = min(max(1, page), last_page)
    rows = db.session.execute(
        _received()
        .where(MessageRecipient.household_id == household_id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return Inbox([Received(*row) for row in rows], total, unread, page, per_page)


def _received():
    return (
        select(Message, Service.name, MessageRecipient.read_at)
        .join(MessageRecipient, MessageRecipient.message_id == Message.id)
        .join(Service, Service.id == Message.service_id)
    )


def received(message_id: int, household_id: int) -> Received | None:
    """The message if the household received it (None otherwise: the caller answers 404)."""
    row = db.session.execute(
        _received().where(Message.id == message_id, MessageRecipient.household_id == household_id)
    ).one_or_none()
    return Received(*row) if row is not None else None


def unread_count(household_id: int) -> int:
    """Messages the household has not opened yet. One query."""
    return (
        db.session.scalar(
            select(func.count(MessageRecipient.id)).where(
                MessageRecipient.household_id == household_id,
                MessageRecipient.read_at.is_(None),
            )
        )
        or 0
    )


# --- Staff ------------------------------------------------------------------------------------


def _scope(user) -> list:
    """Administrators: every message; an agent: those of the services they work for."""
    if user.is_admin:
        return []
    from citoyens.services.models import StaffService

    mine = select(StaffService.service_id).where(StaffService.user_id == user.id)
    return [Message.service_id.in_(mine)]


@dataclass
class SentPage(QueuePage):
    read: dict[int, int] = field(default_factory=dict)  # message id -> households that read it


def sent_messages(user, page: int = 1, per_page: int = STAFF_PAGE_SIZE) -> SentPage:
    """The messages the user may see, newest first, with how many households read each.
    Three queries, whatever the page size."""
    conditions = _scope(user)
    total = db.session.scalar(select(func.count(Message.id)).where(*conditions)) or 0
    last_page = max(1, -(-total // per_page))
    page = min(max(1, page), last_page)
    items = list(
        db.session.scalars(
            select(Message)
            .options(joinedload(Message.author), joinedload(Message.service))
            .where(*conditions)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    return SentPage(items, total, page, per_page, read=read_counts([m.id for m in items]))


def read_counts(message_ids: list[int]) -> dict[int, int]:
    """Message id -> households that opened it. One query (none for no message)."""
    if not message_ids:
        return {}
    return dict(
        db.session.execute(
            select(MessageRecipient.message_id, func.count(MessageRecipient.read_at))
            .where(MessageRecipient.message_id.in_(message_ids))
            .group_by(MessageRecipient.message_id)
        ).all()
    )


def message_for_staff(user, message_id: int) -> tuple[Message | None, bool]:
    """(the message or None, whether the user may see it: one of their services')."""
    message = db.session.scalar(
        select(Message)
        .options(joinedload(Message.author), joinedload(Message.service))
        .where(Message.id == message_id)
    )
    if message is None:
        return None, False
    return message, may_act_for_service(user, message.service_id)


def sendable(user) -> tuple[list[Service], list[Activity]]:
    """The active services the user may write for (administrators: all) and their active
    activities. Three queries at most."""
    allowed = service_ids_for(user)
    services = select(Service).where(Service.active.is_(True)).order_by(Service.name)
    if allowed is not None:
        services = services.where(Service.id.in_(allowed))
    service_list = list(db.session.scalars(services))
    ids = [service.id for service in service_list]
    if not ids:
        return [], []
    activities = list(
        db.session.scalars(
            select(Activity)
            .options(joinedload(Activity.service))
            .join(Service, Service.id == Activity.service_id)
            .where(Activity.service_id.in_(ids), Activity.active.is_(True))
            .order_by(Service.name, Activity.start_time, Activity.name)
        )
    )
    return service_list, activities
