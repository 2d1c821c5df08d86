"""Reconciliation runs, breaks and leakage findings (to come; see docs/)."""
