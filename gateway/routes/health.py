"""Liveness, readiness and metrics of this gateway process."""

import prometheus_client
from fastapi import APIRouter, Response

from gateway.deps import Shared
from gateway.problems import ProblemError, openapi_responses
from schemas import api


def router(shared: Shared) -> APIRouter:
    r = APIRouter(tags=["health"])

    @r.get("/metrics", summary="Prometheus metrics of this process",
                response_class=Response)
    def metrics() -> Response:
        return Response(prometheus_client.generate_latest(), media_type=prometheus_client.CONTENT_TYPE_LATEST)

    @r.get("/healthz", response_model=api.Health, summary="The process is running")
    def healthz():
        return api.Health()

    @r.get(
        "/readyz", response_model=api.Readiness, summary="Dependencies answer",
        responses={503: {**openapi_responses(503)[503], "description": "a check failed; `checks` names it"}},
    )
    def readyz():
        checks, failing = {}, False
        for name, check in shared.deps.ready_checks.items():
            try:
                check()
                checks[name] = "ok"
            except Exception as error:  # any failure means not ready
                checks[name] = f"{type(error).__name__}: {error}"[:300]
                failing = True
        if failing:
            raise ProblemError(503, "not_ready", "a dependency is not ready: "
                               + ", ".join(n for n, s in checks.items() if s != "ok"), checks=checks)
        return api.Readiness(checks=checks)

    return r
