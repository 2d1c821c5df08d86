"""CSV drops: time entries that arrive as files, read into pages (no pulls, no pull plan)."""
