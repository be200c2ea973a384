"""python-telegram-bot's network layer on aiohttp instead of httpx (`http_client: aiohttp`).

PTB makes every Bot API call through one seam, `telegram.request.BaseRequest.do_request`
(method, URL, parameters and files in; HTTP status and body bytes out); PTB itself turns
the status and body into results or `TelegramError`s. `AiohttpRequest` implements that seam
on one `aiohttp.ClientSession`. Why: measured over real HTTP on loopback, httpx costs about
three times the CPU per request of aiohttp (README, "Benchmark"), and a bot on one core
spends most of its time making requests.

What it maps, and how:

- the pool: at most `connection_pool_size` connections (`TCPConnector(limit=...)`), kept
  alive between requests; an idle one is closed after `keepalive_timeout` (30 s), before
  the usual 60-75 s after which servers close them, so that a request never starts on a
  connection the server is closing (one the server closed is dropped at once: the event
  loop sees the EOF);
- PTB's four timeouts (per call, else this object's defaults): `connect` ->
  `sock_connect`; `pool` + `connect` -> aiohttp's `connect` (which counts the wait for a free
  connection *and* the connecting); `read` -> `sock_read` (between two reads of the
  answer). aiohttp has no write timeout, so the sum of all four (with `media_write_timeout`
  for uploads) bounds the whole request: a stuck upload still ends;
- errors, so that PTB's and `HotlineRateLimiter`'s retries work as with httpx: any timeout
  -> `telegram.error.TimedOut`; connection refused, reset or closed mid-answer, and any other
  aiohttp or socket error -> `telegram.error.NetworkError`. Messages carry the error's class
  and the OS's reason for its errno only, and the aiohttp error is not chained: its text
  may hold the URL, and the URL holds the bot token;
- bodies: a JSON object of the call's parameters (`RequestData.parameters`, which PTB has
  already turned into JSON-able values), or, when there are files, multipart/form-data as
  PTB's HTTPXRequest sends it (`RequestData.json_parameters` as fields, and
  `RequestData.multipart_data`: name -> (file name, bytes or file, MIME type));
- proxies: aiohttp's `trust_env` would read the environment and ~/.netrc in a worker thread
  on *every* request, so it is off; the proxy variables (HTTPS_PROXY, NO_PROXY, ...) are read
  once per origin instead, or `proxy=` names one. Cookies are not kept (the Bot API sets
  none).

`initialize()` opens the session (it must be made inside the running event loop),
`shutdown()` closes it; a request before `initialize()` or after `shutdown()` is a
RuntimeError, as with HTTPXRequest.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

log = logging.getLogger(__name__)

JSON = "application/json"
# PTB's ODVInput[float] (private): seconds, None for no limit, or BaseRequest.DEFAULT_NONE.
CallTimeout = Any
Proxy = tuple[URL, aiohttp.BasicAuth | None]


class AiohttpRequest(BaseRequest):
    """`BaseRequest` on an aiohttp session; see the module docstring."""

    __slots__ = (
        "_connect_timeout",
        "_keepalive_timeout",
        "_media_write_timeout",
        "_pool_size",
        "_pool_timeout",
        "_proxies",
        "_proxy",
        "_read_timeout",
        "_session",
        "_timeouts",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = 32,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        *,
        proxy: str | None = None,
        keepalive_timeout: float = 30.0,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._proxy = proxy
        self._keepalive_timeout = keepalive_timeout
        self._session: aiohttp.ClientSession | None = None
        # ClientTimeout objects by (read, write, connect, pool): nearly every call uses
        # the defaults, so one or two are ever made.
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}
        # The environment's proxy per origin (scheme, host, port), None for none: read once.
        self._proxies: dict[tuple[str, str | None, int | None], Proxy | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    @property
    def connection_pool_size(self) -> int:
        return self._pool_size

    async def initialize(self) -> None:
        if self._session is not None and not self._session.closed:
            return
        connector = aiohttp.TCPConnector(
            limit=self._pool_size,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_timeout,
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            headers={"User-Agent": self.USER_AGENT},
            # Timeouts are given per request (PTB's per-call overrides).
            timeout=aiohttp.ClientTimeout(),
        )

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is None or session.closed:
            log.debug("AiohttpRequest is already shut down")
            return
        await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: CallTimeout = BaseRequest.DEFAULT_NONE,
        write_timeout: CallTimeout = BaseRequest.DEFAULT_NONE,
        connect_timeout: CallTimeout = BaseRequest.DEFAULT_NONE,
        pool_timeout: CallTimeout = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data is not None else None
        data: aiohttp.FormData | bytes | None
        headers: dict[str, str] | None = None
        if files:
            data = _multipart(request_data.json_parameters if request_data else {}, files)
        elif request_data is not None:
            # A JSON body (the Bot API takes one for any call without files): one json.dumps
            # of the whole call, about a seventh of the CPU of form-encoding each value as
            # JSON and then URL-quoting it (~4 against ~30 µs for a text with a keyboard).
            data = json.dumps(request_data.parameters, ensure_ascii=False).encode()
            headers = {"Content-Type": JSON}
        else:
            data = None
        default = BaseRequest.DEFAULT_NONE
        timeout = self._timeout(
            self._read_timeout if read_timeout is default else read_timeout,
            (
                (self._media_write_timeout if files else self._write_timeout)
                if write_timeout is default
                else write_timeout
            ),
            self._connect_timeout if connect_timeout is default else connect_timeout,
            self._pool_timeout if pool_timeout is default else pool_timeout,
        )
        proxy, proxy_auth = self._proxy_for(url)
        try:
            async with session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=timeout,
                proxy=proxy,
                proxy_auth=proxy_auth,
                allow_redirects=False,
            ) as response:
                return response.status, await response.read()
        # `from None`: the aiohttp error's own text may hold the URL, and so the token, and
        # a logged traceback would show it; its class and errno are in the message.
        except TimeoutError as err:  # aiohttp's timeouts are TimeoutErrors too
            raise TimedOut(f"Timed out ({_kind(err)})") from None
        except (aiohttp.ClientError, OSError) as err:
            raise NetworkError(f"aiohttp.{_kind(err)}") from None

    # ------------------------------------------------------------------ helpers

    def _timeout(
        self,
        read: float | None,
        write: float | None,
        connect: float | None,
        pool: float | None,
    ) -> aiohttp.ClientTimeout:
        key = (read, write, connect, pool)
        timeout = self._timeouts.get(key)
        if timeout is None:
            parts = (read, write, connect, pool)
            total = None if any(p is None for p in parts) else sum(p for p in parts if p)
            acquire = None if connect is None or pool is None else connect + pool
            timeout = aiohttp.ClientTimeout(
                total=total, connect=acquire, sock_connect=connect, sock_read=read
            )
            if len(self._timeouts) < 64:  # a bounded cache: per-call values could be anything
                self._timeouts[key] = timeout
        return timeout

    def _proxy_for(self, url: str) -> tuple[str | URL | None, aiohttp.BasicAuth | None]:
        if self._proxy is not None:
            return self._proxy, None
        parsed = URL(url)
        origin = (parsed.scheme, parsed.host, parsed.port)
        if origin not in self._proxies:
            try:
                self._proxies[origin] = get_env_proxy_for_url(parsed)
            except LookupError:  # no proxy variable for this scheme, or NO_PROXY names it
                self._proxies[origin] = None
        found = self._proxies[origin]
        return (None, None) if found is None else found


def _multipart(
    parameters: dict[str, str], files: dict[str, tuple[str, Any, str]]
) -> aiohttp.FormData:
    # quote_fields=False: file names go out as UTF-8 between quotes, as httpx sends them
    # and Telegram shows them; aiohttp's default would percent-encode "заявление.docx".
    form = aiohttp.FormData(quote_fields=False, default_to_multipart=True)
    for name, value in parameters.items():
        form.add_field(name, value)
    for name, (file_name, content, mime_type) in files.items():
        # A line break would end the part's header early; no file name needs one.
        safe_name = file_name.replace("\r", " ").replace("\n", " ")
        form.add_field(name, content, filename=safe_name, content_type=mime_type)
    return form


def _kind(err: BaseException) -> str:
    """The error's class and, for socket errors, the OS's standard reason for its errno
    ("Connection refused"): what an operator needs. Never the error's own text: aiohttp
    puts the URL, and so the bot token, into some of them ("Can not write request body
    for <url>")."""
    code = getattr(getattr(err, "os_error", err), "errno", None)
    reason = f": {os.strerror(code)}" if isinstance(code, int) and code > 0 else ""
    return f"{type(err).__name__}{reason}"
