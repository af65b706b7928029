"""Create and upgrade kitsession's tables with its bundled Alembic scripts.

One copy of the scripts serves everyone: ``alembic upgrade head`` in a
checkout (with the top-level ``alembic.ini``), ``flask kitsession db
upgrade`` or :func:`upgrade` in code for an app that pip-installed the
package. Their history lives in its own version table,
``kitsession_alembic_version``, so it never meets the app's own
``alembic_version``.
"""

from __future__ import annotations

import logging
import os
import typing as t
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from flask import Flask

from . import models
from .state import get_state
from .stores.sql import create_store_engine
from .stores.sql import resolve_user_key
from .stores.sql import resolve_user_link
from .stores.sql import SQLAlchemyStore

#: Alembic's version table for kitsession's own migration history.
VERSION_TABLE = "kitsession_alembic_version"

#: Environment variable holding the database URL for the ``alembic`` command.
DATABASE_URL_ENV = "KITSESSION_DATABASE_URL"

# Serialise concurrent upgrades (several workers starting at once).
_PG_LOCK_ID = 0x6B697473  # "kits"
_LOCK_NAME = "kitsession_migrations"

logger = logging.getLogger("flask_kitsession")


@dataclass(frozen=True)
class MigrationTarget:
    """What the migration scripts build: the session table's metadata and the
    user table its foreign key points at.
    """

    metadata: sa.MetaData
    #: The user table's primary key column.
    user_key: sa.Column[t.Any]
    owns_user_table: bool
    #: The column sessions link users by; ``None`` for :attr:`user_key`.
    user_link: sa.Column[t.Any] | None = None

    @property
    def link(self) -> sa.Column[t.Any]:
        """The column sessions link users by."""
        return self.user_key if self.user_link is None else self.user_link

    @property
    def table_names(self) -> frozenset[str]:
        """Names of the tables kitsession migrates."""
        return (
            frozenset(self.metadata.tables)
            if self.owns_user_table
            else frozenset({models.SESSION_TABLE_NAME})
        )

    @classmethod
    def for_store(cls, store: SQLAlchemyStore) -> MigrationTarget:
        link = None if store.user_link is store.user_key else store.user_link
        return cls(store.metadata, store.user_key, store.owns_user_table, link)

    @classmethod
    def for_user_model(
        cls, user_model: t.Any = None, user_id_column: str | None = None
    ) -> MigrationTarget:
        """The target for a user model (``None``: kitsession's own user
        table), linking sessions as :class:`SQLAlchemyStore` would.
        """
        if user_model is None:
            return cls(models.metadata, models.user_table.c.id, True)
        key = resolve_user_key(user_model)
        found = resolve_user_link(key, user_id_column)
        link = None if found is key else found
        metadata = sa.MetaData(naming_convention=models.NAMING_CONVENTION)
        models.define_session_table(metadata, key, link)
        return cls(metadata, key, False, link)


def script_location() -> str:
    """Return the folder of the migration scripts: inside the installed
    package (a wheel), or at the top of a source checkout.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "migrations", here.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return str(candidate)
    raise RuntimeError(f"kitsession's migration scripts are missing (looked next to {here}).")


def alembic_config(
    *,
    connection: sa.Connection | None = None,
    target: MigrationTarget | None = None,
) -> Config:
    """Return an Alembic config for kitsession's scripts, built in code.

    :param connection: Run on this connection (the caller owns the transaction).
    :param target: What to migrate; the default schema if not given.
    """
    config = Config()
    config.set_main_option("script_location", script_location())
    config.attributes["connection"] = connection
    config.attributes["kitsession_target"] = target
    return config


def _store(app: Flask | None) -> SQLAlchemyStore:
    store = get_state(app).store
    if not isinstance(store, SQLAlchemyStore):
        raise RuntimeError(
            f"The app's session store is a {type(store).__name__}, which has no"
            " SQL schema to migrate. kitsession's own user table, if the app"
            " uses it, is created with"
            " flask_kitsession.models.user_table.create(engine, checkfirst=True)."
        )
    return store


def _run(app: Flask | None, action: t.Callable[[Config], t.Any]) -> t.Any:
    store = _store(app)
    with store.engine.begin() as connection:
        return action(
            alembic_config(connection=connection, target=MigrationTarget.for_store(store))
        )


def upgrade(app: Flask | None = None, revision: str = "head") -> None:
    """Upgrade the app's session tables to ``revision`` (by default the latest).

    Safe to call at every start of every worker: it does nothing when the
    tables are up to date, and concurrent calls wait for each other (an
    advisory lock on PostgreSQL, ``GET_LOCK`` on MySQL/MariaDB, the write
    lock on SQLite).
    """
    _run(app, lambda config: command.upgrade(config, revision))


def downgrade(app: Flask | None = None, revision: str = "-1") -> None:
    """Downgrade the app's session tables to ``revision`` (``"base"`` drops them)."""
    _run(app, lambda config: command.downgrade(config, revision))


def current_revision(app: Flask | None = None) -> str | None:
    """Return the revision the app's session tables are at, or ``None``."""
    store = _store(app)
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def schema_differences(
    connection: sa.Connection, target: MigrationTarget | None = None
) -> list[t.Any]:
    """Return how the database differs from kitsession's models, as Alembic's
    autogenerate sees it; empty when the tables are exactly as the models say.
    Only kitsession's own tables are compared.
    """
    from alembic.autogenerate import compare_metadata

    if target is None:
        target = MigrationTarget.for_user_model()
    context = MigrationContext.configure(
        connection,
        opts={
            **_only_kitsession_tables(target.table_names),
            "compare_type": True,
            "target_metadata": target.metadata,
        },
    )
    return list(compare_metadata(context, target.metadata))


def check(app: Flask | None = None) -> list[t.Any]:
    """Return how the app's session tables differ from the models (empty if not)."""
    store = _store(app)
    with store.engine.connect() as connection:
        return schema_differences(connection, MigrationTarget.for_store(store))


def _only_kitsession_tables(names: frozenset[str]) -> dict[str, t.Any]:
    """Alembic options that limit autogenerate to kitsession's own tables, on
    both sides: the database's (it never proposes to drop the app's tables)
    and the metadata's (an app's metadata may hold the session table beside
    the app's own, which are not kitsession's to create).
    """

    def include_name(name: str | None, type_: str, parent_names: t.Any) -> bool:
        return type_ != "table" or name in names

    def include_object(
        obj: t.Any, name: str | None, type_: str, reflected: bool, compare_to: t.Any
    ) -> bool:
        return type_ != "table" or name in names

    return {"include_name": include_name, "include_object": include_object}


def exclude_kitsession_tables(
    obj: t.Any, name: str | None, type_: str, reflected: bool, compare_to: t.Any
) -> bool:
    """An ``include_object`` for the app's own Alembic ``env.py`` when
    kitsession's tables are migrated by kitsession (``flask kitsession db
    upgrade``): the app's autogenerate then never proposes to create, change
    or drop them::

        context.configure(..., include_object=exclude_kitsession_tables)
    """
    if type_ == "table":
        return name not in (models.SESSION_TABLE_NAME, VERSION_TABLE)
    table = getattr(obj, "table", None)
    return getattr(table, "name", None) not in (models.SESSION_TABLE_NAME, VERSION_TABLE)


#: The branch label of kitsession's revisions, for an app that keeps them in
#: its own Alembic history (``alembic upgrade kitsession@head``).
BRANCH_LABEL = "kitsession"


def include_kitsession(
    context: t.Any,
    target_metadata: sa.MetaData | t.Sequence[sa.MetaData] | None = None,
    *,
    user_model: t.Any = None,
    after: str | None = None,
) -> list[sa.MetaData]:
    """Put kitsession's tables in the app's own Alembic environment: the one
    change an ``env.py`` made by ``alembic init`` needs. Replace its
    ``target_metadata = None`` (or ``= Base.metadata``) line with::

        from flask_kitsession.migrate import include_kitsession

        target_metadata = include_kitsession(context, Base.metadata)

    kitsession's revisions then join the app's history as a branch of their
    own, labelled ``kitsession``, recorded in the app's ``alembic_version``:
    ``alembic upgrade heads`` creates and upgrades its tables with the app's,
    and autogenerate (``alembic check``, ``alembic revision
    --autogenerate``) compares them with kitsession's models instead of
    proposing to drop them.

    When the session table points at the app's own user table
    (``user_model``), kitsession's first revision depends on the app's
    revision that creates that table (Alembic's ``depends_on``), so that
    ``alembic upgrade heads`` runs it first and ``alembic downgrade base``
    undoes it last: by default the app's first revision (its base, as
    Django's ``__first__``), else the one ``after`` names. Until the app has
    a revision, kitsession's tables are left out (and a warning logged):
    ``alembic revision --autogenerate`` then writes the app's first revision.

    An app that already created the tables with ``flask kitsession db
    upgrade`` runs ``alembic stamp kitsession@head`` once instead of
    upgrading them again.

    :param context: The ``alembic.context`` module that ``env.py`` imports.
    :param target_metadata: The app's own metadata (one or a sequence), if any.
    :param user_model: The app's user model when the session table points at
        it (as ``KITSESSION_USER_MODEL``: a mapped class, a ``Table`` or an
        import string); ``None`` for kitsession's own ``user`` table.
    :param after: With ``user_model``, the app's revision that creates the
        user table (a revision id or a branch label), when it is not the
        app's first.
    :return: The app's metadata followed by kitsession's, for
        ``context.configure(target_metadata=...)``; the app's alone while
        kitsession's tables wait for the app's first revision.

    .. versionadded:: 0.1
    """
    if after is not None and user_model is None:
        raise TypeError(
            "after= names the app's revision that creates its user table; pass"
            " user_model= too (kitsession's own user table needs no such revision)."
        )
    if target_metadata is None:
        app_metadata: list[sa.MetaData] = []
    elif isinstance(target_metadata, sa.MetaData):
        app_metadata = [target_metadata]
    else:
        app_metadata = list(target_metadata)
    script = context.script
    versions = Path(script_location(), "versions").resolve()
    # The app's own folders: version_locations if alembic.ini lists any, else
    # the versions folder next to its env.py (Alembic's default).
    locations = list(script.version_locations) or [str(Path(script.dir, "versions"))]
    app_folders = [location for location in locations if _resolved(location) != versions]
    missing = len(app_folders) == len(locations)
    if _revisions_read(script) and (missing or user_model is not None):
        raise RuntimeError(
            "kitsession's revisions could not join the app's: Alembic had read"
            " the app's revisions already. Call include_kitsession() before"
            " anything in env.py reads them."
        )
    apps_own = None
    if user_model is not None:
        apps_own = _apps_own_revisions(script, app_folders)
        order = _FirstRevisionOrder.after_the_apps(apps_own, after)
        if order is None:
            logger.warning(
                "kitsession's tables wait for the app's first revision, which"
                " creates the user table they point at: `alembic revision"
                " --autogenerate`, then `alembic upgrade heads`."
            )
            return app_metadata
        # Read by revision 0001 (first_revision_depends_on) when Alembic
        # loads it, while the migrations run.
        context.config.attributes[_FIRST_REVISION_ORDER] = order
    if missing:
        # Added before the revisions are first read: every command that runs
        # env.py reads them only when the migrations run.
        script.version_locations = [*locations, str(versions)]
    # env.py hands in the alembic.context module, a proxy of the running
    # EnvironmentContext (which it keeps as _proxy); the revision context is
    # there while `alembic revision` or `alembic check` runs.
    environment = getattr(context, "_proxy", context)
    options = environment.context_opts if isinstance(environment, EnvironmentContext) else {}
    revision_context = options.get("revision_context")
    if revision_context is not None:
        if apps_own is None:
            # No dependency waits for the database: the whole history may be read now.
            app_heads = [
                head
                for head in script.get_heads()
                if Path(script.get_revision(head).path).resolve().parent != versions
            ]
        else:
            app_heads = apps_own.get_heads()
        _new_revisions_stay_the_apps(app_heads, revision_context, app_folders)
    target = MigrationTarget.for_user_model(user_model)
    context.config.attributes["kitsession_target"] = target
    return [*app_metadata, target.metadata]


def _revisions_read(script: t.Any) -> bool:
    """Return whether Alembic has read the revisions of ``script`` already
    (then the folders and the dependency come too late).

    Alembic has no public way to ask: its ``RevisionMap`` keeps what it read
    in the memoized attribute ``_revision_map``. Tested in
    ``tests/test_app_alembic.py``, which fails if that changes.
    """
    return "_revision_map" in vars(script.revision_map)


def _apps_own_revisions(script: t.Any, app_folders: list[str]) -> t.Any:
    """Return a script directory of the app's folders alone, with the
    options of the app's: it reads the app's revisions without reading
    kitsession's, before kitsession's first one knows what it depends on.
    """
    from alembic.script import ScriptDirectory

    return ScriptDirectory(
        script.dir,
        version_locations=app_folders,
        sourceless=script.sourceless,
        recursive_version_locations=script.recursive_version_locations,
    )


# Config attribute: the _FirstRevisionOrder of the app's env.py.
_FIRST_REVISION_ORDER = "kitsession_first_revision_order"


@dataclass(frozen=True)
class _FirstRevisionOrder:
    """Where kitsession's first revision goes in an app's history whose own
    revision creates the user table: after :attr:`depends_on`.
    """

    #: The app's revisions kitsession's first revision depends on.
    depends_on: tuple[str, ...]
    #: Those and the app's revisions before them.
    at_or_before: frozenset[str]
    #: All the app's revisions.
    apps: frozenset[str]

    @classmethod
    def after_the_apps(cls, apps_own: t.Any, after: str | None) -> _FirstRevisionOrder | None:
        """The order after the app's revision ``after`` (an id or a branch
        label), else after the app's bases; ``None`` while it has none.
        """
        from alembic.util import CommandError

        if after is None:
            depends_on = tuple(sorted(apps_own.get_bases()))
            if not depends_on:
                return None
        else:
            try:
                depends_on = (apps_own.get_revision(after).revision,)
            except CommandError as e:
                raise ValueError(
                    f"include_kitsession(after={after!r}) names no revision of the app's: {e}"
                ) from e
        at_or_before = {
            revision.revision
            for head in depends_on
            for revision in apps_own.iterate_revisions(head, "base")
        }
        apps = {revision.revision for revision in apps_own.walk_revisions()}
        return cls(depends_on, frozenset(at_or_before), frozenset(apps))

    def applied_without_it(self, current: t.Collection[str]) -> bool:
        """Return whether the database had kitsession's revisions applied
        before this order existed: beside the app's revision they now depend
        on (or one before it), which the dependency would make their ancestor
        (Alembic refuses such a version table as "overlapping").
        """
        current = set(current)
        return bool(current & self.at_or_before) and bool(current - self.apps)


def first_revision_depends_on() -> tuple[str, ...] | None:
    """Return the app's revisions kitsession's first revision depends on
    (its ``depends_on``): those :func:`include_kitsession` found while the
    app's ``env.py`` runs, ``None`` anywhere else.

    A database whose version table holds kitsession's revisions beside the
    app's revision they would depend on (applied before the dependency
    existed) keeps them without it: their order no longer matters there,
    and Alembic would refuse the version table.
    """
    from alembic import context

    # The module has a config only while an env.py runs: Alembic sets it up
    # for the run and removes it after.
    config = getattr(context, "config", None)
    order = None if config is None else config.attributes.get(_FIRST_REVISION_ORDER)
    if not isinstance(order, _FirstRevisionOrder):
        return None
    try:
        # Alembic reads the revisions once env.py has configured the
        # context: the version table is there to read.
        current = context.get_context().get_current_heads()
    except Exception:  # Alembic's "No context has been configured yet."
        return order.depends_on
    return None if order.applied_without_it(current) else order.depends_on


def _resolved(location: str) -> Path:
    from alembic.util import coerce_resource_to_filename

    return coerce_resource_to_filename(location).resolve()


def _new_revisions_stay_the_apps(
    app_heads: list[str], revision_context: t.Any, app_folders: list[str]
) -> None:
    """Make ``alembic revision --autogenerate`` (which runs ``env.py``) write
    the app's revision where it would without kitsession: in the app's
    folder, after the app's own head (or as a new base), never after
    kitsession's head or into the installed package. Only what the command
    line left at its default changes: these are the fields Alembic's own
    ``process_revision_directives`` hook may change.
    """
    head = "base" if not app_heads else app_heads[0] if len(app_heads) == 1 else None
    version_path = app_folders[0] if len(app_folders) == 1 else None
    arguments = revision_context.command_args
    for directive in revision_context.generated_revisions:
        # The command line leaves None for its default, "head".
        if head is not None and directive.head in (None, "head"):
            directive.head = head
        if version_path is not None and directive.version_path is None:
            directive.version_path = version_path
    # And for the revisions Alembic adds after these (one per engine, say).
    if head is not None and arguments["head"] in (None, "head"):
        arguments["head"] = head
    if version_path is not None and arguments["version_path"] is None:
        arguments["version_path"] = version_path


def migration_target() -> MigrationTarget:
    """Return what the running migration builds. For use in revision scripts."""
    from alembic import context

    target = context.config.attributes.get("kitsession_target")
    assert isinstance(target, MigrationTarget), "run migrations through run_migrations()"
    return target


def _database_url(context: t.Any) -> str:
    x_arguments = context.get_x_argument(as_dictionary=True)
    url = x_arguments.get("url") or os.environ.get(DATABASE_URL_ENV)
    url = url or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "No database to migrate: set KITSESSION_DATABASE_URL, or pass"
            " -x url=postgresql+psycopg://... to alembic."
        )
    return str(url)


def run_migrations(context: t.Any) -> None:
    """The body of ``migrations/env.py``: run kitsession's migrations, online
    (on a connection) or offline (printing SQL).
    """
    config = context.config
    target = config.attributes.get("kitsession_target")
    if target is None:
        x_arguments = context.get_x_argument(as_dictionary=True)
        target = MigrationTarget.for_user_model(
            x_arguments.get("user_model"), x_arguments.get("user_id_column")
        )
        config.attributes["kitsession_target"] = target
    options: dict[str, t.Any] = {
        "target_metadata": target.metadata,
        "version_table": VERSION_TABLE,
        **_only_kitsession_tables(target.table_names),
        "compare_type": True,
    }
    if context.is_offline_mode():
        context.configure(url=_database_url(context), literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return

    connection = config.attributes.get("connection")
    if connection is not None:
        _run_online(context, connection, options)
        return
    engine = create_store_engine(_database_url(context), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            _run_online(context, connection, options)
            connection.commit()
    finally:
        engine.dispose()


def _sqlite_in_transaction(connection: sa.Connection) -> bool:
    return bool(getattr(connection.connection.driver_connection, "in_transaction", False))


def _run_online(context: t.Any, connection: sa.Connection, options: dict[str, t.Any]) -> None:
    dialect = connection.dialect.name
    if dialect == "sqlite":
        # SQLite's DDL is transactional. Alembic assumes it is not and commits
        # after each revision, which would let the write lock taken below go
        # before the run ends: a waiting worker would run the next revision too.
        options = {**options, "render_as_batch": True, "transactional_ddl": True}
    context.configure(connection=connection, **options)
    # Several workers may upgrade at once when they start: each waits for the
    # one before it, then finds the tables up to date.
    with context.begin_transaction():
        if dialect == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        elif dialect == "sqlite" and not _sqlite_in_transaction(connection):
            # The write lock, before Alembic reads its version table; the DDL
            # that follows stays in this transaction.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif dialect in ("mysql", "mariadb"):
            connection.execute(sa.text("SELECT GET_LOCK(:name, 600)"), {"name": _LOCK_NAME})
        try:
            context.run_migrations()
        finally:
            if dialect in ("mysql", "mariadb"):
                connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": _LOCK_NAME})
