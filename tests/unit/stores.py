"""The domain suite runs on both event stores: eventsourcing's in-memory one and Herald's
PostgreSQL one (its recorder, the one-query version check and the workspace locks, as wired)."""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterator

import pytest

from domain.application import HeraldApplication
from herald.storage import db, event_store
from herald.storage.locks import workspace_locks

AppFactory = Callable[..., HeraldApplication]
STORES = ("memory", "postgres")


@pytest.fixture(params=STORES)
def make_app(request: pytest.FixtureRequest) -> Iterator[AppFactory]:
    made: list[HeraldApplication] = []
    pools = []
    if request.param == "memory":

        def make(clock: Callable[[], datetime], **kwargs: object) -> HeraldApplication:
            return HeraldApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock, **kwargs)
    else:
        url = request.getfixturevalue("database_url")

        def make(clock: Callable[[], datetime], **kwargs: object) -> HeraldApplication:
            pool = db.connection_pool(url, max_size=4)
            pools.append(pool)
            env = {**db.eventsourcing_env(url), "APPLICATION_RECORDER_TOPIC": event_store.RECORDER_TOPIC}
            app = HeraldApplication(env, clock=clock, versions=event_store.versions_in(pool),
                                    serialise=workspace_locks(pool), recorded_at=event_store.recorded_at_in(pool),
                                    **kwargs)
            made.append(app)
            return app

    yield make
    for app in made:
        app.close()
    for pool in pools:
        pool.close()
