"""Unbound extension instances, bound to the app in create_app()."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import DDL, Index, MetaData, event, func, text
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so that Alembic migrations read the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Staff search finds a word anywhere in names, e-mails, references and cities: on
# PostgreSQL, trigram GIN indexes (pg_trgm) serve those `LIKE '%…%'`; SQLite scans.
event.listen(
    Base.metadata,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)


def trigram_index(table: str, column: str) -> Index:
    """A GIN trigram index on lower(column), PostgreSQL only (`households.directory`
    searches `lower(column) LIKE lower(:pattern)`)."""
    label = f"{column}_lower"
    return Index(
        f"ix_{table}_{column}_trgm",
        func.lower(text(column)).label(label),
        postgresql_using="gin",
        postgresql_ops={label: "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql")


db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True)
login_manager = LoginManager()
csrf = CSRFProtect()
mail = Mail()
limiter = Limiter(key_func=get_remote_address)
