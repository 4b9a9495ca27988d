"""Retrospective facial recognition: recorded footage searched against a frozen watchlist version,
social-media faces ingested with their provenance and searched, and the reports an officer reads."""
