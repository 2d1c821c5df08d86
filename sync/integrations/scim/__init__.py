"""SCIM 2.0 (the HR directory): user pulls and their meta.lastModified pull position."""
