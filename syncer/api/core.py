"""Where the API's shared parts used to live, kept importable under their old names.

The parts now live in service.py (Service, the envelope), caches.py (Memo, Coalesced),
auth.py (keys, rate limits, the gate), worker.py (BackgroundSync) and server.py (uvicorn).
"""

from __future__ import annotations

from syncer.api.auth import Admission, RateLimiter, configured_rate_limit
from syncer.api.caches import Coalesced, Memo
from syncer.api.server import ServerHandle, parse_listen, serve_in_thread
from syncer.api.service import (
    ERROR_STATUS,
    Page,
    ProjectState,
    Service,
    SyncRequester,
    SyncTracker,
    error_body,
    service_from,
    service_of,
)
from syncer.api.worker import BackgroundSync

__all__ = ["ERROR_STATUS", "Admission", "BackgroundSync", "Coalesced", "Memo", "Page", "ProjectState",
           "RateLimiter", "ServerHandle", "Service", "SyncRequester", "SyncTracker", "configured_rate_limit",
           "error_body", "parse_listen", "serve_in_thread", "service_from", "service_of"]
