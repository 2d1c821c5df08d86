"""The reconciliation pairs, by name: each compares one source with one target."""
