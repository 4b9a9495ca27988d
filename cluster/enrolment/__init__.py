"""Enrolment into watchlists: which face of a photo is enrolled, CSV manifests, their import, expiry dates."""
