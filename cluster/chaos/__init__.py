"""Chaos: named faults injected into a running deployment, and how it came through each (no Ray here)."""
