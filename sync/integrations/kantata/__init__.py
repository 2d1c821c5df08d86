"""Kantata (the PSA): REST pulls, the change-event feed, its approval webhooks, its pull plan."""
