"""Connectors: one module per vendor dialect, all HTTP through `http.py`."""
