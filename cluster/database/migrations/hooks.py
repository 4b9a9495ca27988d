"""What a revision needs from the packages above the database: a way to seal the audit head, a key lifetime.

The database package cannot import the audit log (the audit log imports it), so the caller hands
these in; a revision that needs one and was given none refuses with what to run instead.
"""

from dataclasses import dataclass
from typing import Protocol

from alembic import op


class HeadSealing(Protocol):
    """Seals the audit log's head record, as revision 1 wrote it and as the current code writes it."""

    @property
    def key_id(self) -> str:
        """The id of the key this process seals with ("" for none)."""
        ...

    def first_seal(self, seq: int, entry_hash: str) -> str:
        """The head seal of revision 1 (seq and hash, no key id), with this process's key."""
        ...

    def reseal(self, seq: int, entry_hash: str, key_id: str, first_seal: str) -> str:
        """The current head seal under `key_id`, after checking `first_seal` was made with that key.

        Raises ValueError when the key is not at hand or `first_seal` does not match: the head was
        rewritten, or the log was written with another key."""
        ...


@dataclass(frozen=True)
class UpgradeHooks:
    """head: seals the audit head (needed when a revision writes or reseals it). key_lifetime_days: the lifetime
    given to API keys issued before keys expired (needed only when there are such keys)."""

    head: HeadSealing | None = None
    key_lifetime_days: int | None = None


class UpgradeRefused(RuntimeError):
    """A revision cannot go on: it needs something the caller did not give, or the data fails a check it makes.

    The message says what to do; the transaction is rolled back, so the database stays as it was."""


def upgrade_hooks() -> UpgradeHooks:
    """The hooks the running upgrade was given (`cluster.database.schema` puts them in the Alembic config)."""
    config = op.get_context().config
    hooks = None if config is None else config.attributes.get("hooks")
    if not isinstance(hooks, UpgradeHooks):
        raise UpgradeRefused("run the migrations through `lfr db upgrade`, which gives them what they need")
    return hooks
