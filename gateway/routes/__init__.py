"""The gateway's endpoints, one module per resource."""

from fastapi import APIRouter

from gateway.deps import GatewayDeps, Shared
from gateway.routes import admin, audit, commands, credits, health, keys, oauth, posts, reports, workspaces
from gateway.routes import automation_rules, calendar, generations, notifications, platforms, tiers, usage, webhooks
from gateway.routes import workflow

RESOURCES = (workspaces, oauth, credits, posts, commands, keys, admin, health, audit, reports, tiers, notifications,
             usage, platforms, webhooks, generations, workflow, calendar, automation_rules)


def build(deps: GatewayDeps, shared: Shared | None = None) -> APIRouter:
    shared = shared or Shared(deps)
    router = APIRouter()
    for resource in RESOURCES:
        router.include_router(resource.router(shared))
    return router
