"""Speed benchmarks: scripts that time our implementations against the reference libraries."""
