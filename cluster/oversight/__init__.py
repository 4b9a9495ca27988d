"""Oversight: what a deployment did, as its records show it, in a report a supervisor or oversight body can read."""
