"""Versioned mappings (source value → canonical value, effective-dated) and field ownership."""
