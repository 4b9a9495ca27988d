"""The live pipeline's plain logic: face service batches, stream forwarding, result sinks, matching, status board."""
