"""Lists of names (files, photos, sources) as an audit entry holds them: counted, digested, a few named.

An entry must stay small (the log refuses details over 4 MiB, and a search of a large archive
can name hundreds of thousands of files), yet still let an auditor tie it to what was used: the
count, a SHA-256 over the names in the order given (recompute it from the same list to check),
and the first few names so a reader sees what kind of input it was.
"""

import hashlib
from collections.abc import Sequence
from typing import Any

NAMED = 3
"""Names an entry lists; the rest are counted and digested."""


def name_summary(names: Sequence[str], named: int = NAMED) -> dict[str, Any]:
    """{"count", "sha256", "first"} for `names`: bounded in size however long the list is."""
    digest = hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()
    return {"count": len(names), "sha256": digest, "first": list(names[:named])}
