"""Dependencies the routes declare: settings, the Elasticsearch client, and who is calling.

Access (api/security/) is checked app-wide before any route runs: every route needs a key
unless marked ``@public``, and every write (a method other than GET/HEAD) needs an admin key.
Routes declare what they need anyway, so it reads in the code and shows in the OpenAPI:

    @router.get("/trackers")
    def list_trackers(principal: ReadDep, ...) -> ...: ...        # any key

    @router.post("/trackers")
    def create_tracker(principal: AdminDep, ...) -> ...: ...      # admin key
        log.info("tracker created by %s", principal.key_name)     # a name, never the key

or, when the route has no use for the principal, ``dependencies=[AdminAccess]`` in the
decorator. With no keys configured every caller gets an admin principal named "open".
"""

from __future__ import annotations

from typing import Annotated

from elasticsearch import Elasticsearch
from fastapi import Depends, Request

from api.security import Principal, authorize, require_admin
from indexer.settings import Settings


# Coroutines, though they do no I/O: a sync dependency costs every request a trip through the
# thread pool, where the searches run.
async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_es(request: Request) -> Elasticsearch:
    es: Elasticsearch = request.app.state.es
    return es


async def get_search_es(request: Request) -> Elasticsearch:
    """The client search pages are sent with (``indexer.search.workers.search_client``)."""
    es: Elasticsearch = request.app.state.search_es
    return es


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EsDep = Annotated[Elasticsearch, Depends(get_es)]
SearchEsDep = Annotated[Elasticsearch, Depends(get_search_es)]
# Any valid key (read or admin).
ReadDep = Annotated[Principal, Depends(authorize)]
# An admin key: 401 without a valid key, 403 with a read key.
AdminDep = Annotated[Principal, Depends(require_admin)]
AdminAccess = Depends(require_admin)
