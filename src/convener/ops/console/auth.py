"""Who may see the console: pure decisions, no I/O.

With no ops token (the default, allowed only on a loopback bind) the console is open. With a
token, a browser logs in once through the form at ``/console/login``: the token is checked and a
cookie carrying a value derived from it (never the token itself) is set; ``Authorization: Bearer``
works as on every other ops endpoint.
"""

from __future__ import annotations

import hashlib
import hmac

COOKIE = "convener_console"
PATH = "/console"
OPEN_PATHS = frozenset({"/console/login"})


def session_value(token: str) -> str:
    """The cookie value for ``token`` (a keyed digest: the cookie does not reveal the token)."""
    return hmac.new(token.encode(), b"convener-console-session-v1", hashlib.sha256).hexdigest()


def allowed(token: str, path: str, cookie: str | None, authorization: str | None) -> bool:
    if not token or path in OPEN_PATHS:
        return True
    if cookie is not None and hmac.compare_digest(cookie.encode(), session_value(token).encode()):
        return True
    return authorization is not None and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())


def token_matches(token: str, given: str) -> bool:
    return bool(token) and hmac.compare_digest(given.strip().encode(), token.encode())


def wants_page(path: str, accept: str) -> bool:
    """An unauthorised page request is sent to the login form; an API request gets 401."""
    return not path.startswith(f"{PATH}/api/") and "text/html" in accept
