"""A minimal in-process WSGI client: the same cheap path for every stack.

Flask's test client builds a request, a cookie jar and a response wrapper for
every call, which costs more than some of the stacks measured. This client
builds each request's environ once and copies it, keeps cookies in a dict, and
reads the status and body straight from the WSGI call.
"""

from __future__ import annotations

import io
import typing as t
from urllib.parse import urlencode

from werkzeug.test import EnvironBuilder

WSGIApp = t.Callable[[dict[str, t.Any], t.Callable[..., t.Any]], t.Iterable[bytes]]


class Response(t.NamedTuple):
    status: int
    body: bytes
    set_cookies: list[str]


class Client:
    """One browser: a cookie jar and a way to call the app.

    :param app: The WSGI app.
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}
        self._environs: dict[tuple[str, str, str], tuple[dict[str, t.Any], bytes]] = {}

    def _environ(self, method: str, path: str, form: dict[str, str] | None) -> dict[str, t.Any]:
        body_text = urlencode(form or {})
        key = (method, path, body_text)
        cached = self._environs.get(key)
        if cached is None:
            builder = EnvironBuilder(
                path=path,
                method=method,
                data=body_text if method != "GET" else None,
                content_type="application/x-www-form-urlencoded" if method != "GET" else None,
                headers=[("User-Agent", "kitsession-benchmark/1.0")],
            )
            environ = builder.get_environ()
            builder.close()
            cached = (environ, body_text.encode())
            self._environs[key] = cached
        template, body = cached
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(body)
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return environ

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Response:
        """Call the app once and keep the cookies it sets."""
        status_line = ""
        headers: list[tuple[str, str]] = []

        def start_response(status: str, response_headers: list[tuple[str, str]], *_: t.Any) -> None:
            nonlocal status_line, headers
            status_line, headers = status, response_headers

        iterable = self.app(self._environ(method, path, form), start_response)
        try:
            body = b"".join(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        set_cookies = [value for name, value in headers if name.lower() == "set-cookie"]
        for header in set_cookies:
            self._store_cookie(header)
        return Response(int(status_line[:3]), body, set_cookies)

    def _store_cookie(self, header: str) -> None:
        pair, _, attributes = header.partition(";")
        name, _, value = pair.strip().partition("=")
        lowered = attributes.lower()
        if not value or "max-age=0" in lowered or "expires=thu, 01 jan 1970" in lowered:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, str] | None = None) -> Response:
        return self.request("POST", path, form)
