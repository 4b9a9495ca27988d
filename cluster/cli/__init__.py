"""The `lfr` command line."""
