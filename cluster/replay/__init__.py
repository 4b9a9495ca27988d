"""Recorded footage replayed as live cameras: the RTSP replay server that `lfr loadtest`, benchmarks and tests use."""
