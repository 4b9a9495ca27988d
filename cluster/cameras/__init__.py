"""Cameras: reading video sources into sampled, timestamped frames that survive bad streams."""
