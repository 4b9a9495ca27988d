"""Thin Ray actors and Serve deployments that wrap the plain domain code in `cluster`."""
