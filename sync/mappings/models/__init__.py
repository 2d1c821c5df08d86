"""Models of versioned mappings and field ownership, one module per concept, re-exported here."""

from sync.mappings.models.mappings import MappingEntry, MappingSet, MappingVersion
from sync.mappings.models.ownership import OwnershipRule
from sync.mappings.models.systems import System

__all__ = ["MappingEntry", "MappingSet", "MappingVersion", "OwnershipRule", "System"]
