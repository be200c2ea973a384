"""Webhook mode: an aiohttp server that receives Telegram's POSTs.

- The `X-Telegram-Bot-Api-Secret-Token` header must equal TELEGRAM_WEBHOOK_SECRET (compared
  in constant time with `hmac.compare_digest`); a missing or wrong one is a 403 and the
  body is not even read.
- A body that is not a JSON object, or an update the library cannot parse, gets a 200 and
  nothing is done (a log line names the update id only): any other answer makes Telegram
  deliver the same update again and again.
- A good update is answered 200 only after it was handled (its messages sent), so an
  update is acknowledged only once done; Telegram sends it again if we crash first.

Serve it behind a TLS-terminating proxy (Telegram calls only HTTPS, on ports 443, 80, 88 or
8443); `listen` defaults to 127.0.0.1 for that reason.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
Submit = Callable[[Mapping[str, Any]], "asyncio.Future[None]"]


class WebhookServer:
    def __init__(
        self,
        submit: Submit,
        secret: str,
        *,
        path: str,
        listen: str,
        port: int,
        reuse_port: bool = False,
    ) -> None:
        self.submit = submit
        self.reuse_port = reuse_port
        self._secret = secret.encode()
        self.path = path
        self.listen = listen
        self.port = port
        self._runner: web.AppRunner | None = None
        self.rejected = 0

    async def start(self) -> None:
        app = web.Application(client_max_size=2 * 1024 * 1024)
        app.router.add_post(self.path, self._handle)
        # No access log: Telegram's requests carry nothing we want on disk.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        # reuse_port: several worker processes bind the same port and the kernel spreads
        # the connections over them (one webhook URL, several workers).
        site = web.TCPSite(self._runner, self.listen, self.port, reuse_port=self.reuse_port or None)
        await site.start()
        server = site._server
        if server is not None and getattr(server, "sockets", None):
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Stop listening; requests being handled are finished first."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            self.rejected += 1
            log.warning("webhook: a request without the right secret token was refused")
            return web.Response(status=403)
        try:
            raw = json.loads(await request.read())
        except ValueError:
            log.warning("webhook: a body that is not JSON was ignored")
            return web.Response()
        if not isinstance(raw, dict):
            log.warning("webhook: a body that is not an update was ignored")
            return web.Response()
        # Shielded: a client that hangs up must not cut the handling short.
        await asyncio.shield(self.submit(raw))
        return web.Response()
