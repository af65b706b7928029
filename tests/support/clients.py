"""What a client does: requests through the test client or over HTTP, and
what its cookie and the ``/me`` view say.
"""

from __future__ import annotations

import http.client
import typing as t
import urllib.parse

from flask.testing import FlaskClient


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    form: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[http.client.HTTPResponse, str]:
    """One request to a server of the tests on 127.0.0.1 (a connection of its
    own); return the response and its body.
    """
    headers = dict(headers)
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    return response, text


def session_cookie(client: FlaskClient, name: str = "session") -> str | None:
    cookie = client.get_cookie(name)
    return None if cookie is None else cookie.value


def log_in(client: FlaskClient, user_id: t.Any) -> None:
    response = client.post("/login", data={"user_id": str(user_id)})
    assert response.status_code == 200, response.data


def me(client: FlaskClient) -> dict[str, t.Any]:
    """What the ``/me`` view says about the client's session."""
    data = client.get("/me").get_json()
    assert isinstance(data, dict)
    return data
