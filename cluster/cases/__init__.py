"""Cases: what a retrospective or social-media search found, kept for officers to adjudicate, then purged."""
