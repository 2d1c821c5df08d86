"""Approved PSA expenses → canonical Expense → one ERP expense report each, exactly once."""
