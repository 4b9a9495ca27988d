"""`lfr demo`: the live run on a synthetic crowd with its assets shipped in the package."""
