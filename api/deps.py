"""Dependencies the routes declare: settings and the Elasticsearch client of the running app."""

from __future__ import annotations

from typing import Annotated

from elasticsearch import Elasticsearch
from fastapi import Depends, Request

from indexer.settings import Settings


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_es(request: Request) -> Elasticsearch:
    es: Elasticsearch = request.app.state.es
    return es


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EsDep = Annotated[Elasticsearch, Depends(get_es)]
