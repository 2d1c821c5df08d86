"""Moving records between systems: canonical model, connectors, mappings, pipeline, queues."""
