"""The application layer: every state change an officer or operator makes, audited, and the live run.

The CLI, the demo and the API call it; it calls the actors and the domain packages. It is the
only layer besides `actors/` that imports Ray.
"""
