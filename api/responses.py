"""A JSON answer rendered where the route runs.

FastAPI serialises a route's return value on the event loop, after a sync route has returned
from the thread pool: a search page of a megabyte or more is then encoded on the one thread
that also answers ``/healthz`` and every other request. A route that returns ``ModelJSON``
has its answer encoded in its own worker thread, by pydantic straight to bytes (no Python
dicts in between); FastAPI passes a ``Response`` through untouched. The route keeps its
``response_model`` for the OpenAPI.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel


class ModelJSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if not isinstance(content, BaseModel):
            raise TypeError(f"ModelJSON renders a pydantic model, not {type(content).__name__}")
        # by_alias as FastAPI serialises a response_model.
        return content.model_dump_json(by_alias=True).encode()
