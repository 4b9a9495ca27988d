"""Keeping credentials out of the audit log: a key pasted into a URL is recorded as [redacted].

Request paths and query strings are audited, and people paste things into URLs: a bearer token,
or `?token=...` when a client library puts it there. Anything shaped like one of our keys, and
the value of any parameter whose name says it holds a secret, is replaced before it is stored.
"""

import re

from cluster.api.keys import TOKEN_PREFIX

REDACTED = "[redacted]"
_KEY = re.compile(rf"{TOKEN_PREFIX}[A-Za-z0-9_-]+")
_SECRET_NAME = r"(?:[^&;=]*[_.-])?(?:token|key|apikey|secret|password|passwd|auth|authorization|credentials?|session)"
_SECRET_PARAMETER = re.compile(rf"(?i)(^|[&;?])({_SECRET_NAME})=([^&;]*)")


def redact(text: str) -> str:
    """`text` (a decoded path or query string) with every key and secret parameter value replaced."""
    text = _SECRET_PARAMETER.sub(lambda match: f"{match[1]}{match[2]}={REDACTED}", text)
    return _KEY.sub(REDACTED, text)
