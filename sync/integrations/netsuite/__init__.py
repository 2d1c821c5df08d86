"""NetSuite (the ERP): SuiteQL pulls, REST record upserts by external id, its pull plan."""
