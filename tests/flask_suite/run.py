"""Run Flask's own session tests on Flask's cookie session, then on kitsession.

``python -m tests.flask_suite.run`` downloads the sdist of the installed Flask
from PyPI (``pip download --no-deps --no-binary :all: flask==3.1.x``), takes
its ``tests/test_basic.py``, ``tests/conftest.py``, ``tests/static/`` and
``pyproject.toml`` into a temporary folder (none of Flask's code is kept in
this repository), and runs the session tests with Flask's own pytest settings
(``filterwarnings = ["error"]``) once on Flask's cookie session and once per
kitsession store, with ``KitSession`` installed on every ``Flask(...)``
(``plugin.py``): a ``MemoryStore``, then a SQLite database per app whose
tables are made by ``flask_kitsession.migrate.upgrade(app)``.

The session tests are the tests of ``test_basic.py`` whose name (with their
class's) contains ``session`` or ``flash``, and any other whose code names
``session``, ``_session``, ``flash`` or ``get_flashed_messages`` (the
session, the request context's session, flashing): found by reading the file,
so that a test added to a later Flask is picked up. In Flask 3.1 the two rules
pick the same 15 tests; ``test_max_cookie_size``, the only other test about
cookies, sets a cookie of its own and never touches the session.
``--whole-file`` runs all of ``test_basic.py`` instead.

Every test that passes on the cookie session must pass on each kitsession
store, unless ``DOCUMENTED_DIFFERENCES`` lists it for that store with the
reason, quoted from the documentation (``README.md`` or ``docs/``). It exits 1
on any other regression, printing each with the store, the test id and the
failure, and on an entry that no longer differs or whose reason is not found
in the documentation.

Needs network access to PyPI; the ``test`` extra has everything else.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]

#: The kitsession runs, by the plugin's name for their store.
STORES = {"memory": "MemoryStore", "sqlite": "SQLite"}

#: (store, test id) -> why kitsession differs there on purpose, quoted from the
#: documentation (README.md or docs/). The store is a key of ``STORES``; the
#: test id is pytest's, as the runner prints it.
_REFRESH = "kitsession re-sends a permanent session's cookie when its expiry slides"
DOCUMENTED_DIFFERENCES: dict[tuple[str, str], str] = {
    # The test reads a permanent session between two touches.
    ("memory", "tests/test_basic.py::test_session_cookie_setting"): _REFRESH,
    ("sqlite", "tests/test_basic.py::test_session_cookie_setting"): _REFRESH,
    # The test writes session["user_id"] = 1 with no user table behind it.
    ("sqlite", "tests/test_basic.py::test_session_refresh_vary"): (
        "Writing one of the user keys links the session to that user, and a SQL"
        " store refuses a user who does not exist."
    ),
}

#: What Flask's suite needs from the sdist: the tests, their fixtures, the
#: pytest settings they run with, and the files the static-file tests serve
#: (for ``--whole-file``). A name ending in "/" is a folder.
SUITE_FILES = ("pyproject.toml", "tests/conftest.py", "tests/test_basic.py", "tests/static/")
TEST_FILE = "tests/test_basic.py"

#: A test is a session test if its name has one of these...
SESSION_WORDS = ("session", "flash")
#: ...or its code names one of these.
SESSION_NAMES = frozenset({"session", "_session", "flash", "get_flashed_messages"})


@dataclass(frozen=True)
class Outcome:
    """How one test ended: ``passed``, ``failed`` or ``skipped``, and why."""

    result: str
    message: str = ""
    #: The line of the test file the failure came through ("" if none).
    location: str = ""


def fetch_suite(folder: Path, version: str) -> Path:
    """Download Flask's sdist into ``folder``; return the folder its test
    suite was extracted to.
    """
    downloads = folder / "downloads"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"flask=={version}",
            "--dest",
            str(downloads),
        ],
        check=True,
        timeout=300,
    )
    [archive] = downloads.glob("*.tar.gz")
    suite = folder / "flask"
    with tarfile.open(archive) as sdist:
        members = {
            # "flask-3.1.3/tests/test_basic.py" -> "tests/test_basic.py"
            member.name.partition("/")[2]: member
            for member in sdist.getmembers()
            if member.isfile()
        }
        names = [
            name
            for wanted in SUITE_FILES
            for name in (
                [name for name in members if name.startswith(wanted)]
                if wanted.endswith("/")
                else [wanted]
            )
        ]
        for name in names:
            extracted = sdist.extractfile(members[name])
            assert extracted is not None, name
            target = suite / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(extracted.read())
    return suite


def session_tests(test_file: Path) -> list[str]:
    """Return the pytest ids of the session tests in ``test_file``."""
    tree = ast.parse(test_file.read_text(encoding="utf-8"))
    candidates: list[tuple[str, ast.FunctionDef]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            candidates.append((f"{TEST_FILE}::{node.name}", node))
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            candidates += [
                (f"{TEST_FILE}::{node.name}::{method.name}", method)
                for method in node.body
                if isinstance(method, ast.FunctionDef) and method.name.startswith("test")
            ]
    selected = []
    for test_id, function in candidates:
        names = set()
        for child in ast.walk(function):
            if isinstance(child, ast.Attribute):
                names.add(child.attr)
            elif isinstance(child, ast.Name):
                names.add(child.id)
        test_name = test_id.partition("::")[2].lower()
        if any(word in test_name for word in SESSION_WORDS) or names & SESSION_NAMES:
            selected.append(test_id)
    return selected


def run_suite(
    suite: Path,
    tests: list[str],
    *,
    store: str | None,
    report: Path,
    database_folder: Path,
) -> dict[str, Outcome]:
    """Run ``tests`` on Flask's cookie session (``store=None``) or on
    kitsession with ``store``; return each test's outcome by its id.
    """
    plugins = ["no:cacheprovider", "tests.flask_suite.compat"]
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPOSITORY), os.environ.get("PYTHONPATH", "")]),
    }
    if store is not None:
        plugins.append("tests.flask_suite.plugin")
        database_folder.mkdir()
        environment["KITSESSION_SUITE_STORE"] = store
        environment["KITSESSION_SUITE_DATABASE_FOLDER"] = str(database_folder)
    command = [sys.executable, "-m", "pytest", "-q", "--tb=short", f"--junitxml={report}"]
    for plugin in plugins:
        command += ["-p", plugin]
    subprocess.run([*command, *tests], cwd=suite, env=environment, timeout=600, check=False)
    module = TEST_FILE.removesuffix(".py").replace("/", ".")
    outcomes: dict[str, Outcome] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        classname = case.get("classname", "")
        path = [TEST_FILE, *classname.removeprefix(module).split(".")[1:], case.get("name", "")]
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            # The traceback's last line in the test file: the failing assertion,
            # or the call that raised.
            lines = re.findall(rf"{re.escape(TEST_FILE)}:(\d+)", problem.text or "")
            outcomes["::".join(path)] = Outcome(
                "failed", problem.get("message", ""), f"{TEST_FILE}:{lines[-1]}" if lines else ""
            )
        elif case.find("skipped") is not None:
            outcomes["::".join(path)] = Outcome("skipped")
        else:
            outcomes["::".join(path)] = Outcome("passed")
    return outcomes


def _words(text: str) -> str:
    return " ".join(text.split())


def documentation() -> str:
    """The README and the pages in ``docs/``, whitespace collapsed."""
    pages = [REPOSITORY / "README.md"]
    pages += sorted(p for p in (REPOSITORY / "docs").rglob("*") if p.suffix in (".md", ".rst"))
    return "\n".join(_words(page.read_text(encoding="utf-8")) for page in pages)


def _one_line(message: str, limit: int = 300) -> str:
    line = _words(message)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.flask_suite.run", description=__doc__)
    parser.add_argument(
        "--version",
        default=importlib.metadata.version("flask"),
        help="the Flask release whose tests to run (default: the installed one)",
    )
    parser.add_argument(
        "--store",
        choices=list(STORES),
        action="append",
        help="run kitsession on this store only (repeat for several; default: all)",
    )
    parser.add_argument(
        "--whole-file",
        action="store_true",
        help="run every test of tests/test_basic.py, not only the session tests",
    )
    args = parser.parse_args(argv)
    stores = args.store or list(STORES)
    with tempfile.TemporaryDirectory(prefix="flask-suite-") as temporary:
        folder = Path(temporary)
        suite = fetch_suite(folder, args.version)
        tests = [TEST_FILE] if args.whole_file else session_tests(suite / TEST_FILE)
        cookie = run_suite(
            suite,
            tests,
            store=None,
            report=folder / "cookie.xml",
            database_folder=folder / "cookie-databases",
        )
        results = {
            store: run_suite(
                suite,
                tests,
                store=store,
                report=folder / f"{store}.xml",
                database_folder=folder / f"{store}-databases",
            )
            for store in stores
        }

    def passed(outcomes: dict[str, Outcome]) -> set[str]:
        return {name for name, outcome in outcomes.items() if outcome.result == "passed"}

    regressions: list[tuple[str, str]] = []
    differences: list[tuple[str, str]] = []
    for store, outcomes in results.items():
        for name in sorted(passed(cookie) - passed(outcomes)):
            key = (store, name)
            (differences if key in DOCUMENTED_DIFFERENCES else regressions).append(key)
    problems: list[str] = []
    docs = documentation()
    for (store, name), reason in DOCUMENTED_DIFFERENCES.items():
        if store not in STORES:
            problems.append(f"DOCUMENTED_DIFFERENCES names store {store!r}, not one of {STORES}.")
        elif store in results and name not in cookie:
            problems.append(f"DOCUMENTED_DIFFERENCES names {name}, which did not run.")
        elif store in results and name in passed(results[store]):
            problems.append(f"{name} passes on {store} now: remove it from DOCUMENTED_DIFFERENCES.")
        if _words(reason) not in docs:
            problems.append(
                f"The reason given for {name} on {store} is not in README.md or docs/:"
                f" quote the documented difference. ({reason!r})"
            )

    selection = "tests/test_basic.py" if args.whole_file else "session tests"
    print(
        f"Flask {args.version} {selection}: {len(cookie)} tests;"
        f" {len(passed(cookie))} passed on Flask's cookie session, "
        + ", ".join(
            f"{len(passed(outcomes))} on kitsession's {STORES[store]}"
            for store, outcomes in results.items()
        )
        + f"; {len(regressions)} regressions, {len(differences)} documented differences."
    )
    for store, name in regressions:
        outcome = results[store].get(name, Outcome("missing"))
        where = f" at {outcome.location}" if outcome.location else ""
        print(
            f"  regression on {store}: {name} ({outcome.result}{where}:"
            f" {_one_line(outcome.message)})"
        )
    for key in differences:
        print(f"  documented difference on {key[0]}: {key[1]} ({DOCUMENTED_DIFFERENCES[key]})")
    for name in sorted(set(cookie) - passed(cookie)):
        print(f"  not gated, fails on Flask's cookie session: {name} ({cookie[name].result})")
    for problem in problems:
        print(f"  error: {problem}")
    return 1 if regressions or problems or not passed(cookie) else 0


if __name__ == "__main__":
    sys.exit(main())
