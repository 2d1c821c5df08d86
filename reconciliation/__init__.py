"""Checking that systems agree and money does not leak: recon runs, breaks, leakage, KPIs."""
