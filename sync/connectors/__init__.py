"""The transport every vendor shares: configuration, errors, HTTP, auth, budgets, paging, stats."""
