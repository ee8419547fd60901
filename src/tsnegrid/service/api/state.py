"""What every v2 method may touch, built once per server by the app factory and shared by
both transports (REST and gRPC)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tsnegrid.service.api.embedders import EmbedRunner
from tsnegrid.service.api.methods.auth import FailureLimiter
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.db import Database
from tsnegrid.service.gc import Orphans
from tsnegrid.service.ingest import DecodeBudget, FetchSlots
from tsnegrid.service.storage import BlobStore
from tsnegrid.service.urlfetch import AllowList


@dataclass
class ServiceState:
    """The server's configuration, database, blob store and shared limits."""

    config: ServiceConfig
    db: Database
    store: BlobStore
    allow: AllowList
    embed: EmbedRunner
    fetch_slots: FetchSlots | None = None
    decode_budget: DecodeBudget | None = None
    orphans: Orphans = field(default_factory=Orphans)
    auth_failures: FailureLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.auth_failures = FailureLimiter(self.config.auth_failures_per_min)
