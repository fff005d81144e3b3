"""runtimes layer of edgeps (filled in by later issues)."""
