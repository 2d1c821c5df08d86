"""Pipeline records, one module per concept."""

from sync.pipeline.models.connections import Connection
from sync.pipeline.models.exception_items import (
    ExceptionComment,
    ExceptionItem,
    ExceptionSummaryDay,
    ExceptionSummaryRefresh,
    ExceptionSummaryRow,
)
from sync.pipeline.models.inbox import InboxItem, PullPosition
from sync.pipeline.models.outbox import Delivery
from sync.pipeline.models.runs import SyncRun
from sync.pipeline.models.targets import TargetRecord

__all__ = [
    "Connection",
    "Delivery",
    "ExceptionComment",
    "ExceptionItem",
    "ExceptionSummaryDay",
    "ExceptionSummaryRefresh",
    "ExceptionSummaryRow",
    "InboxItem",
    "PullPosition",
    "SyncRun",
    "TargetRecord",
]
