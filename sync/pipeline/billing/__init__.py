"""Billing: invoice candidates from approved work, invoices in billing, invoices in the ERP."""
