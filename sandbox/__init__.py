"""Emulators of the external systems (CRM, PSA, HR, ERP, billing) served on loopback."""
