"""The outbox: deliveries queued, claimed by one worker at a time, and their outcomes."""
