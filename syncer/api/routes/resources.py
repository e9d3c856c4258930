"""The API's resources, with the seeds' id prefixes: templates (tpl_), definitions (def_),
instances (inst_), servers (srv_), deployments (deploy_), and outgoing webhook deliveries.
Thin over the engine; every list is paginated (`page`, `per_page` up to 100). One router
per resource; this one puts them together, in the order the OpenAPI document lists them.
"""

from __future__ import annotations

from fastapi import APIRouter

from syncer.api.routes import deliveries, definitions, deployments, instances, logs, servers, templates

router = APIRouter()
for _part in (templates, definitions, instances, servers, deployments, deliveries, logs):
    router.include_router(_part.router)
