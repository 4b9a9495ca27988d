"""Load-testers' tools: replaying recorded crowds through the real deployment, and chaos scenarios against it."""
