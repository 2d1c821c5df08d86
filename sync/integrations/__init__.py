"""One package per vendor: its client, webhook checks, payload readers, the bodies it renders,
its pull plan and error codes. `registry` maps a connection's dialect to its integration."""
