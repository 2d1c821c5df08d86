"""The synthetic services firm: `sandbox seed` writes one consistent firm into the five systems."""
