"""``HEAD`` on every ``GET`` route: audio players and proxies ask for the headers of a
recording (its length, whether ranges work) before fetching it.

FastAPI routes answer only the methods they declare, so a HEAD would be a 405. This middleware
runs a HEAD as the GET it stands for — the same access checks, status and headers, including
``Content-Length`` — and sends no body, as RFC 9110 says a HEAD answer must.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        body_sent = False

        async def headers_only(message: Message) -> None:
            nonlocal body_sent
            if message["type"] == "http.response.body":
                if body_sent:
                    return
                body_sent = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
