"""The one path every record takes: connections, inbox, runs, outbox, exception queues."""
