"""The guarded path: attempts, retry rules, circuits, stream checks, continuation."""
