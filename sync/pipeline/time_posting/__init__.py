"""PSA time entries → canonical TimeEntry → ERP labour postings (docs/time-posting.md)."""
