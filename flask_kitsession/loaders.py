"""The Flask-Login user loader :meth:`KitSession.init_login_manager` installs.

kitsession's loader (:func:`flask_kitsession.login.load_user`) gives Flask-Login
the user loaded with the session, so an authenticated request costs one SQL
statement. The loader it replaces may do more than load the user. Flask-Security's
does (5.x, ``flask_security.core._user_loader``): it refuses inactive users and
records that the request was authenticated by the session (``fs_authn_via``,
which ``@auth_required("session")`` checks) and when the user last proved who
they are (``fs_paa``, which freshness checks read). Replacing it loses those,
and every session-only view of a Flask-Security app refuses its users; so for
Flask-Security's loader, kitsession's does the same with the user it already
has, instead of a second query.
"""

from __future__ import annotations

import typing as t

from flask import session

from .login import load_user

#: Where Flask-Security defines its user loader.
FLASK_SECURITY_LOADER_MODULE = "flask_security.core"


def user_loader_for(login_manager: t.Any) -> t.Callable[[str], t.Any]:
    """Return kitsession's user loader for ``login_manager``, keeping what the
    loader it replaces does when that is Flask-Security's.

    :param login_manager: A :class:`flask_login.LoginManager`.

    .. versionadded:: 0.1
    """
    replaced = getattr(login_manager, "_user_callback", None)
    if getattr(replaced, "__module__", None) == FLASK_SECURITY_LOADER_MODULE:
        return load_flask_security_user
    return load_user


def load_flask_security_user(user_id: str) -> t.Any:
    """Flask-Security's user loader on kitsession: the session's own user (no
    query), refused if inactive, with the request attributes Flask-Security's
    own loader sets.
    """
    from flask_security.utils import set_request_attr

    if not user_id:
        # No user has an empty id, even one whose fs_uniquifier was emptied.
        return None
    user = load_user(user_id)
    if user is None or not user.active:
        return None
    set_request_attr("fs_authn_via", "session")
    set_request_attr("fs_paa", session.get("fs_paa", 0))
    return user
