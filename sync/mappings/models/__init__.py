"""Models of versioned mappings and field ownership, one module per concept, re-exported here."""

from sync.mappings.models.mappings import MappingEntry, MappingSet, MappingVersion
from sync.mappings.models.ownership import OwnershipChange, OwnershipRule
from sync.mappings.models.systems import System

__all__ = [
    "MappingEntry",
    "MappingSet",
    "MappingVersion",
    "OwnershipChange",
    "OwnershipRule",
    "System",
]
