"""Sphinx configuration of flask-kitsession's documentation."""

from __future__ import annotations

import sys
from pathlib import Path

from pallets_sphinx_themes import get_version
from pallets_sphinx_themes import ProjectLink

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "flask-kitsession"
copyright = "2026, flask-kitsession developers"
author = "flask-kitsession developers"
release, version = get_version("flask-kitsession")

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "pallets_sphinx_themes",
    "kitsession_config",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
# Pages link to each other's sections by their heading ("#targets").
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True

html_theme = "flask"
html_theme_options = {"index_sidebar_logo": False}
html_context = {
    "project_links": [
        ProjectLink("PyPI Releases", "https://pypi.org/project/flask-kitsession/"),
        ProjectLink("Changes", "changes/"),
    ]
}
html_sidebars = {
    "index": ["project.html", "localtoc.html", "searchbox.html"],
    "**": ["localtoc.html", "relations.html", "searchbox.html"],
}
singlehtml_sidebars = {"index": ["project.html", "localtoc.html"]}
html_title = f"flask-kitsession Documentation ({version})"
html_show_sourcelink = False

# "Redis and scaling" (scaling.md) comes from another branch. Until it is
# here its toctree entry points at nothing, which must not fail the build;
# once it is, any toctree entry without a page fails it again.
suppress_warnings = [] if (HERE / "scaling.md").exists() else ["toc.not_readable"]
