"""Retrospective facial recognition: recorded footage searched against a frozen watchlist version, and the reports
an officer reads. Social-media posts are `cluster.social`."""
