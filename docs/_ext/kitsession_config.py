"""The ``kitsession-config`` directive: the table of ``KITSESSION_*`` keys,
rendered from ``flask_kitsession.settings`` (their defaults and meanings are
written there once).
"""

from __future__ import annotations

import typing as t
from datetime import timedelta

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from flask_kitsession.settings import DEFAULTS
from flask_kitsession.settings import DOCUMENTATION


def default_text(value: t.Any) -> str:
    """A default as the table shows it."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        return f"{seconds:g} seconds"
    return f"``{value!r}``"


class ConfigTable(SphinxDirective):
    """A table: key, default, meaning; one row per key of ``DEFAULTS``.

    Written as a Markdown table, for the MyST page that holds the directive.
    """

    def run(self) -> list[nodes.Node]:
        missing = sorted(set(DEFAULTS) - set(DOCUMENTATION))
        if missing:
            raise self.error(f"keys without documentation in settings.DOCUMENTATION: {missing}")
        lines = ["| Key | Default | Meaning |", "| --- | --- | --- |"]
        for key, value in DEFAULTS.items():
            meaning = " ".join(DOCUMENTATION[key].split()).replace("|", "\\|")
            lines.append(f"| ``{key}`` | {default_text(value)} | {meaning} |")
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="flask_kitsession.settings"), 0, container)
        return list(container.children)


def setup(app: Sphinx) -> dict[str, t.Any]:
    app.add_directive("kitsession-config", ConfigTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
