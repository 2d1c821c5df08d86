"""Salesforce (the CRM): SOQL pulls and upserts by external id, its pull plan."""
