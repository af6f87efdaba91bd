"""Keep database passwords out of Prefect's records.

Flow parameters are stored by the Prefect server (its database, the UI, run history). A
``--path postgresql://user:secret@host/db`` must therefore never reach the flow as typed:
:func:`move_url_password_to_env` takes the password out of the URL and hands it to libpq by
the ``PGPASSWORD`` environment variable of this process (which psycopg reads), so the flow
parameter, logs and messages only ever hold ``postgresql://user@host/db``;
:func:`redact_url` masks a password in a URL that is shown in a message.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

_URL_PASSWORD = re.compile(r"^(?P<head>postgres(?:ql)?:/+[^:/@]+):(?P<secret>[^@/]*)@", re.I)


def split_url_password(location: str) -> tuple[str, str | None]:
    """``postgresql://me:pw@h/db`` → (``postgresql://me@h/db``, ``pw``); other text unchanged."""
    match = _URL_PASSWORD.match(location)
    if not match:
        return location, None
    cleaned = match.group("head") + "@" + location[match.end() :]
    return cleaned, unquote(match.group("secret"))


def move_url_password_to_env(location: str) -> str:
    """Strip a password from a PostgreSQL URL into ``PGPASSWORD``; return the clean URL."""
    cleaned, secret = split_url_password(location)
    if secret:
        os.environ["PGPASSWORD"] = secret
    return cleaned


def redact_url(location: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db``."""
    match = _URL_PASSWORD.match(location)
    if not match:
        return location
    return match.group("head") + ":***@" + location[match.end() :]
