"""Alembic environment of flask-kitsession: the logic lives in flask_kitsession.migrate."""

from logging.config import fileConfig

from alembic import context

from flask_kitsession.migrate import run_migrations

if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

run_migrations(context)
