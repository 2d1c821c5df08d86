"""The canonical model: one module per concept, re-exported here."""
