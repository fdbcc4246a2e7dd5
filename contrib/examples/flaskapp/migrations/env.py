"""Alembic environment of the example app.

The URL comes from DATABASE_URL (wharf's migrate plugin passes its
migrate-dsn there; Kubernetes gives it from a Secret), else from
sqlalchemy.url in alembic.ini.  Every migration runs in one transaction:
PostgreSQL has transactional DDL, so a failing revision leaves the schema
and alembic_version as they were.
"""
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

url = os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
if not url:
    raise SystemExit("DATABASE_URL is not set (and alembic.ini has no sqlalchemy.url)")
if url.startswith("postgres://"):  # libpq accepts it, SQLAlchemy does not
    url = "postgresql://" + url[len("postgres://"):]

target_metadata = None


def run_migrations_offline():
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    section = config.get_section(config.config_ini_section) or {}
    section["sqlalchemy.url"] = url
    connectable = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
