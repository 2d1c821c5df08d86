"""One package per vendor (client, pull plan, webhook checks, fields); `registry` maps dialects."""
