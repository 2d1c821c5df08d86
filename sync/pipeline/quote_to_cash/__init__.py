"""Quote to cash: a deal won in the CRM → ERP and billing customer, ERP job and PSA workspace."""
