"""The audit HMAC key the test session seals with: the key is required by default, as in production."""

from cluster.audit.sealing import DEFAULT_KEY_ENV, Sealer

TEST_AUDIT_KEY = "lfr-test-session-audit-key-0123456789abcdef"
"""Not secret: it seals the throwaway logs of the tests only."""
TEST_SEALER = Sealer(TEST_AUDIT_KEY.encode())
KEY_ENV = DEFAULT_KEY_ENV
