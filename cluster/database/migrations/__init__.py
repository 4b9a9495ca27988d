"""The records database's schema under Alembic: the environment, the revisions, and what they need from outside.

Run programmatically by `cluster.database.schema` (no alembic.ini): the revisions ship inside the
package, so an installed `lfr` can upgrade the database it finds.
"""
