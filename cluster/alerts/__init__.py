"""Alerts: candidate sightings, the consolidated alerts they fuse into, and their durable store."""
