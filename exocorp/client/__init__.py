"""`exocorp login|ls|get|provision|...|watch`: a small client of the REST API for people and
scripts (standard library only, so the command starts fast). See docs/cli.md."""
