"""Speed benchmarks (run as scripts, never as timed tests)."""
