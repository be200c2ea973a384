"""A local Telegram Bot API server: real HTTP on 127.0.0.1, strict, and scriptable.

Used by the tests and by `hotline replay --channel telegram`, so that the real
python-telegram-bot talks to something that answers like Telegram:

- `POST|GET /bot<token>/<method>` with form-encoded, multipart or JSON bodies (and query
  strings), every request checked against the Bot API spec (`apispec.ApiSpec`): an unknown
  method, a missing required field, an unknown field or a wrongly typed value is a 400
  `{"ok": false, "error_code": 400, "description": ...}`; a wrong token is a 401;
- simulated methods: getMe, getUpdates (long polling, offset semantics, allowed_updates, a
  newer poll terminating an older one with 409, a 409 while a webhook is set), setWebhook /
  deleteWebhook / getWebhookInfo (updates are then POSTed to the URL with the
  X-Telegram-Bot-Api-Secret-Token header, one at a time per chat, retried until a 2xx),
  sendMessage (at most 4,096 characters, callback_data at most 64 bytes), sendDocument
  (multipart: the bytes and the file name are kept), editMessageReplyMarkup ("message is not
  modified" like the real one), answerCallbackQuery (each query answered once),
  setMyCommands / getMyCommands / deleteMyCommands, sendChatAction, getFile and
  `/file/bot<token>/<path>` for the documents the bot sent and the files people sent
  (`send_user_document`, `send_photo` with `data`); like Telegram, getFile refuses files
  over 20 MB ("file is too big") and uploads over 50 MB are refused (413);
- a test API, as Python methods used in-process: people who write (`send_text`, `press`,
  `send_photo`, `send_sticker`, ..., `inject` for any raw update, a malformed one too), what
  each chat received in order (`received`), every call made (`calls`), fault injection
  (`fail_next`: the next N calls get a 429 with retry_after; `drop_next`: the connection is
  closed without an answer), and `wait_confirmed(update_id)`: returns once the bot has
  acknowledged an update (the next getUpdates offset passed it, or its webhook POST was
  answered 2xx), which is how a test knows the bot finished with it, without sleeping.

Stopping releases hanging long polls at once. The server never logs a request URL (they
contain the token): aiohttp's access log is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import string
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from adapters.telegram.apispec import ApiError, ApiSpec, Upload

log = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
MAX_DOWNLOAD = 20 * 1024 * 1024  # getFile: what a bot may download
MAX_UPLOAD = 50 * 1024 * 1024  # sendDocument: what a bot may upload
UPDATE_KINDS = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "my_chat_member",
    "chat_member",
    "message_reaction",
    "message_reaction_count",
)
# What a bot gets when it never said (or sent an empty allowed_updates list).
DEFAULT_ALLOWED = frozenset(UPDATE_KINDS) - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}
_TOKEN_ALPHABET = string.ascii_letters + string.digits + "_-"


def random_token(bot_id: int | None = None) -> str:
    """A well-formed but fake bot token: `<id>:<35 characters>`."""
    bot_id = bot_id or 7_000_000_000 + secrets.randbelow(999_999_999)
    return f"{bot_id}:" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(35))


def utf16_length(text: str) -> int:
    """Telegram counts message length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- records


@dataclass(slots=True)
class ChatMessage:
    """A message in a chat as the server keeps it. `reply_markup` is the current keyboard
    (None once removed); `sent_markup` the one it was sent with."""

    message_id: int
    chat: dict[str, Any]
    sender: dict[str, Any]
    from_bot: bool
    date: int
    text: str | None = None
    reply_markup: dict[str, Any] | None = None
    sent_markup: dict[str, Any] | None = None
    document: Upload | None = None
    file_id: str | None = None
    caption: str | None = None
    edit_date: int | None = None
    reply_to: int | None = None  # the message_id this one replies to (same chat)

    @property
    def chat_id(self) -> int:
        return int(self.chat["id"])

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of the current inline keyboard, row by row."""
        return _buttons(self.reply_markup)

    @property
    def sent_buttons(self) -> list[tuple[str, str]]:
        return _buttons(self.sent_markup)

    @property
    def labels(self) -> list[str]:
        return [label for label, _ in self.buttons]

    def to_api(self) -> dict[str, Any]:
        """The Message object as the Bot API serves it."""
        served: dict[str, Any] = {
            "message_id": self.message_id,
            "from": self.sender,
            "chat": self.chat,
            "date": self.date,
        }
        if self.edit_date is not None:
            served["edit_date"] = self.edit_date
        if self.text is not None:
            served["text"] = self.text
        if self.document is not None:
            assert self.file_id is not None
            served["document"] = {
                "file_id": self.file_id,
                "file_unique_id": self.file_id[:16],
                "file_name": self.document.filename,
                "mime_type": self.document.content_type,
                "file_size": len(self.document.data),
            }
        if self.caption is not None:
            served["caption"] = self.caption
        if self.reply_markup:
            served["reply_markup"] = self.reply_markup
        if self.reply_to is not None:
            # Only the id and chat of the replied message: enough for every reader here.
            served["reply_to_message"] = {
                "message_id": self.reply_to,
                "chat": self.chat,
                "date": self.date,
            }
        return served


def _buttons(markup: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    rows = (markup or {}).get("inline_keyboard") or []
    return [(b.get("text", ""), b.get("callback_data", "")) for row in rows for b in row]


@dataclass(frozen=True, slots=True)
class Call:
    """One request the server answered: the method, its decoded parameters, the outcome."""

    method: str
    params: Mapping[str, Any]
    status: int
    at: float  # time.monotonic() when it arrived
    description: str = ""


@dataclass(slots=True)
class _Fault:
    kind: str  # "429" or "drop"
    remaining: int
    methods: frozenset[str] | None  # None: every method but getUpdates
    retry_after: int = 1

    def applies(self, method: str) -> bool:
        if self.methods is None:
            return method.lower() != "getupdates"
        return method.lower() in self.methods


class _Signal:
    """Wakes every waiter on the next `notify()`; waiting never misses a later notify."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float | None = None) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


@dataclass(slots=True)
class _Webhook:
    url: str
    secret: str | None
    max_connections: int
    allowed: frozenset[str]


# --------------------------------------------------------------------------- the server


class LocalBotApiServer:
    """A strict, scriptable Bot API server on 127.0.0.1 (see the module docstring).

    Use as `async with LocalBotApiServer() as server:`; `server.api_url` is the `api_url` of
    the adapter's config and `server.token` the token it must use."""

    def __init__(
        self,
        token: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "hotline_local_bot",
        spec: ApiSpec | None = None,
        check_updates: bool = True,
    ) -> None:
        self.token = token or random_token()
        self.bot_id = int(self.token.split(":", 1)[0])
        self.username = username
        self.host = host
        self.port = port
        self.spec = spec or ApiSpec.load()
        self.check_updates = check_updates
        self.calls: list[Call] = []
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.webhook_failures = 0
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._update_ids = itertools.count(1)
        self._last_update_id = 0
        self._pending: dict[int, dict[str, Any]] = {}  # unconfirmed updates, in id order
        self._allowed: frozenset[str] = DEFAULT_ALLOWED
        self._changed = _Signal()  # an update arrived, was confirmed, or a webhook changed
        self._poll: asyncio.Event | None = None  # set to terminate the current long poll
        self._webhook: _Webhook | None = None
        self._delivery: asyncio.Task[None] | None = None
        self._chats: dict[int, list[ChatMessage]] = {}
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._files: dict[str, ChatMessage] = {}
        self._callbacks: dict[str, dict[str, Any]] = {}
        self._faults: list[_Fault] = []
        self._down_until = 0.0  # monotonic time until which the server is away (outage)
        self._methods: dict[str, Callable[[dict[str, Any]], Coroutine[Any, Any, Any]]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendDocument": self._send_document,
            "editMessageReplyMarkup": self._edit_reply_markup,
            "editMessageText": self._edit_text,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendChatAction": self._send_chat_action,
            "getFile": self._get_file,
            "close": self._ok,
            "logOut": self._ok,
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def api_url(self) -> str:
        """What the adapter's `api_url` must be (no trailing /bot)."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Release hanging polls, stop webhook delivery, close the listening socket."""
        self._closing = True
        self._changed.notify()
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
            self._delivery = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalBotApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ people who write

    def user(self, user_id: int, language_code: str | None = "en", **extra: Any) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        if language_code:
            user["language_code"] = language_code
        user.update(extra)
        return user

    def send_text(
        self,
        user_id: int,
        text: str,
        *,
        language_code: str | None = "en",
        chat_id: int | None = None,
        chat_type: str = "private",
        reply_to: int | None = None,
    ) -> int:
        """A person types `text` (a command gets its bot_command entity). Returns the
        update_id. `chat_id`/`chat_type` put the message in a group instead; `reply_to`
        makes it a reply to that message of the chat."""
        extra: dict[str, Any] = {"text": text}
        if reply_to is not None:
            where = user_id if chat_id is None else chat_id
            target = next(m for m in self._chats.get(where, []) if m.message_id == reply_to)
            extra["reply_to_message"] = target.to_api()
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            extra["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_length(command)}
            ]
        return self._user_message(user_id, language_code, chat_id, chat_type, extra)

    def send_photo(
        self, user_id: int, caption: str | None = None, data: bytes | None = None, **kw: Any
    ) -> int:
        """A person sends a photo; with `data`, the bot can download it (getFile)."""
        file_id = _file_id()
        size: dict[str, Any] = {"file_id": file_id, "file_unique_id": file_id[:16]}
        size.update({"width": 90, "height": 90})
        small = {"file_id": _file_id(), "file_unique_id": _file_id(), "width": 9, "height": 9}
        extra: dict[str, Any] = {"photo": [small, size]}
        upload = None
        if data is not None:
            size["file_size"] = len(data)
            upload = Upload("photo.jpg", data, "image/jpeg")
        if caption is not None:
            extra["caption"] = caption
        language = kw.pop("language_code", "en")
        return self._user_message(
            user_id, language, None, "private", extra, upload=upload, file_id=file_id
        )

    def send_sticker(self, user_id: int, language_code: str | None = "en") -> int:
        sticker = {
            "file_id": _file_id(),
            "file_unique_id": _file_id(),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "🙂",
        }
        return self._user_message(user_id, language_code, None, "private", {"sticker": sticker})

    def send_voice(self, user_id: int, language_code: str | None = "en") -> int:
        voice = {"file_id": _file_id(), "file_unique_id": _file_id(), "duration": 3}
        return self._user_message(user_id, language_code, None, "private", {"voice": voice})

    def send_location(self, user_id: int, language_code: str | None = "en") -> int:
        location = {"latitude": 55.75, "longitude": 37.62}
        return self._user_message(user_id, language_code, None, "private", {"location": location})

    def send_user_document(
        self,
        user_id: int,
        file_name: str = "scan.pdf",
        data: bytes = b"%PDF-1.4 a scan",
        mime_type: str = "application/pdf",
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        chat_type: str = "private",
        reply_to: int | None = None,
        language_code: str | None = "en",
    ) -> int:
        """A person (or, with `chat_id`, someone in a group) sends a document whose bytes
        the bot can then download (getFile + /file/...); `reply_to` as in `send_text`."""
        file_id = _file_id()
        document = {
            "file_id": file_id,
            "file_unique_id": file_id[:16],
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(data),
        }
        extra: dict[str, Any] = {"document": document}
        if caption is not None:
            extra["caption"] = caption
        if reply_to is not None:
            where = user_id if chat_id is None else chat_id
            target = next(m for m in self._chats.get(where, []) if m.message_id == reply_to)
            extra["reply_to_message"] = target.to_api()
        upload = Upload(file_name, data, mime_type)
        return self._user_message(
            user_id, language_code, chat_id, chat_type, extra, upload=upload, file_id=file_id
        )

    def edit_text(self, user_id: int, message_id: int, text: str) -> int:
        """The person edits an earlier message: an `edited_message` update."""
        message = self._message_object(user_id, "en", None, "private", {"text": text})
        message["message_id"] = message_id
        message["edit_date"] = int(time.time())
        return self._enqueue({"edited_message": message})

    def channel_post(self, channel_id: int, text: str) -> int:
        chat = {"id": channel_id, "type": "channel", "title": "A channel"}
        post = {"message_id": self._next_message_id(channel_id), "date": int(time.time())}
        post.update({"chat": chat, "text": text})
        return self._enqueue({"channel_post": post})

    def press(
        self,
        user_id: int,
        label: str | None = None,
        *,
        data: str | None = None,
        message_id: int | None = None,
        chat_id: int | None = None,
        language_code: str | None = "en",
    ) -> int:
        """The person presses a button: by `label` (or `data`) on the latest bot message
        of the chat with such a button, or on message `message_id`, even if that
        message's keyboard is gone (a stale press sends the data it had). Returns the
        update_id."""
        chat = user_id if chat_id is None else chat_id
        message = self.find_button_message(chat, label, data, message_id)
        if message is None:
            raise LookupError(f"no message in chat {chat} has a button {label or data!r}")
        if data is None:
            pressed = [d for lbl, d in message.buttons or message.sent_buttons if lbl == label]
            if not pressed:
                raise LookupError(f"message {message.message_id} has no button {label!r}")
            data = pressed[0]
        query_id = str(secrets.randbits(63))
        self._callbacks[query_id] = {"answered": False, "user": user_id}
        query = {
            "id": query_id,
            "from": self.user(user_id, language_code),
            "message": message.to_api(),
            "chat_instance": str(chat),
            "data": data,
        }
        return self._enqueue({"callback_query": query})

    def inject(self, update: Mapping[str, Any]) -> int:
        """Queue any raw update as it is (a malformed one too); an update_id is added when
        missing. Not checked against the spec."""
        raw = dict(update)
        if "update_id" not in raw:
            raw["update_id"] = self._new_update_id()
        elif isinstance(raw["update_id"], int):
            self._last_update_id = max(self._last_update_id, raw["update_id"])
            self._update_ids = itertools.count(self._last_update_id + 1)
        self._pending[raw["update_id"]] = raw
        self._changed.notify()
        return raw["update_id"]

    # ------------------------------------------------------------------ reading

    def received(self, chat_id: int) -> list[ChatMessage]:
        """What the bot sent to the chat, in order."""
        return [m for m in self._chats.get(chat_id, []) if m.from_bot]

    def last_keyboard(self, chat_id: int) -> ChatMessage | None:
        """The latest bot message in the chat that still shows an inline keyboard."""
        for message in reversed(self.received(chat_id)):
            if message.buttons:
                return message
        return None

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def callback_answered(self, query_id: str) -> bool:
        return bool(self._callbacks.get(query_id, {}).get("answered"))

    def unanswered_callbacks(self) -> list[str]:
        return [q for q, info in self._callbacks.items() if not info["answered"]]

    @property
    def pending_updates(self) -> int:
        return len(self._pending)

    @property
    def long_polling(self) -> bool:
        """A getUpdates call is waiting for updates."""
        return self._poll is not None

    @property
    def webhook(self) -> _Webhook | None:
        return self._webhook

    def is_confirmed(self, update_id: int) -> bool:
        return update_id <= self._last_update_id and update_id not in self._pending

    async def wait_confirmed(self, update_id: int, timeout: float = 10.0) -> None:
        """Return once the bot acknowledged `update_id` (TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        while not self.is_confirmed(update_id):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"update {update_id} was not acknowledged in {timeout}s")
            await self._changed.wait(remaining)

    async def wait_all_confirmed(self, timeout: float = 10.0) -> None:
        for update_id in list(self._pending):
            await self.wait_confirmed(update_id, timeout)

    # ------------------------------------------------------------------ faults

    def fail_next(
        self, count: int, retry_after: int = 1, methods: Iterable[str] | None = None
    ) -> None:
        """Answer the next `count` calls (of `methods`; default: all but getUpdates) with
        429 Too Many Requests and `retry_after` seconds."""
        self._faults.append(_Fault("429", count, _lower(methods), retry_after))

    def outage(self, seconds: float) -> None:
        """Go away for `seconds`: every call (getUpdates too) has its connection closed
        without an answer, as when Telegram or the network between is down."""
        self._down_until = time.monotonic() + seconds

    def drop_next(self, count: int, methods: Iterable[str] | None = None) -> None:
        """Close the connection of the next `count` calls (of `methods`; default: all but
        getUpdates) without answering and without acting on them."""
        self._faults.append(_Fault("drop", count, _lower(methods)))

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        method = request.match_info["method"]
        if not secrets.compare_digest(request.match_info["token"], self.token):
            return _error(401, "Unauthorized")
        fault = self._take_fault(method)
        if arrived < self._down_until:
            fault = _Fault("drop", 0, None)  # the server is away: every call, getUpdates too
        if fault is not None and fault.kind == "drop":
            await request.read()
            if request.transport is not None:
                request.transport.close()
            self.calls.append(Call(method, {}, 0, arrived, "connection dropped"))
            return web.Response()
        if fault is not None:
            description = f"Too Many Requests: retry after {fault.retry_after}"
            self.calls.append(Call(method, {}, 429, arrived, description))
            return _error(429, description, {"retry_after": fault.retry_after})
        try:
            params, uploads, form = await _read_params(request)
            name, args = self.spec.check_call(method, params, uploads, form=form)
            handler = self._methods.get(name)
            if handler is None:
                raise ApiError(f"Bad Request: method {name} is not simulated by the local server")
            result = await handler(args)
        except ApiError as err:
            self.calls.append(Call(method, {}, err.code, arrived, err.description))
            return _error(err.code, err.description)
        self.calls.append(Call(name, args, 200, arrived))
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if not secrets.compare_digest(request.match_info["token"], self.token):
            return _error(401, "Unauthorized")
        message = self._files.get(request.match_info["path"].removeprefix("documents/"))
        if message is None or message.document is None:
            return _error(404, "Not Found")
        if len(message.document.data) > MAX_DOWNLOAD:
            return _error(400, "Bad Request: file is too big")
        return web.Response(body=message.document.data, content_type=message.document.content_type)

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and fault.applies(method):
                fault.remaining -= 1
                return fault
        self._faults = [f for f in self._faults if f.remaining > 0]
        return None

    # ------------------------------------------------------------------ updates

    def _new_update_id(self) -> int:
        self._last_update_id = next(self._update_ids)
        return self._last_update_id

    def _enqueue(self, body: dict[str, Any]) -> int:
        update = {"update_id": self._new_update_id(), **body}
        if self.check_updates:
            self.spec.check_object(update, "Update", "update")
        self._pending[update["update_id"]] = update
        self._changed.notify()
        return update["update_id"]

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def _message_object(
        self,
        user_id: int,
        language_code: str | None,
        chat_id: int | None,
        chat_type: str,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        chat_id = user_id if chat_id is None else chat_id
        if chat_type == "private":
            chat: dict[str, Any] = {
                "id": chat_id,
                "type": "private",
                "first_name": f"User{user_id}",
            }
        else:
            chat = {"id": chat_id, "type": chat_type, "title": "A group"}
        return {
            "message_id": self._next_message_id(chat_id),
            "from": self.user(user_id, language_code),
            "chat": chat,
            "date": int(time.time()),
            **extra,
        }

    def _user_message(
        self,
        user_id: int,
        language_code: str | None,
        chat_id: int | None,
        chat_type: str,
        extra: dict[str, Any],
        *,
        upload: Upload | None = None,
        file_id: str | None = None,
    ) -> int:
        message = self._message_object(user_id, language_code, chat_id, chat_type, extra)
        recorded = ChatMessage(
            message["message_id"],
            message["chat"],
            message["from"],
            False,
            message["date"],
            extra.get("text"),
            caption=extra.get("caption"),
            reply_to=extra.get("reply_to_message", {}).get("message_id"),
        )
        self._chats.setdefault(message["chat"]["id"], []).append(recorded)
        if upload is not None and file_id is not None:
            # Kept only so that getFile and the download URL can serve it to the bot.
            self._files[file_id] = ChatMessage(
                recorded.message_id,
                recorded.chat,
                recorded.sender,
                False,
                recorded.date,
                document=upload,
                file_id=file_id,
            )
        return self._enqueue({"message": message})

    def _confirm_below(self, offset: int | None) -> None:
        if not offset:
            return
        if offset < 0:
            keep = list(self._pending)[offset:]
            doomed = [u for u in self._pending if u not in keep]
        else:
            doomed = [u for u in self._pending if u < offset]
        for update_id in doomed:
            del self._pending[update_id]
        if doomed:
            self._changed.notify()

    def _deliverable(self, limit: int, allowed: frozenset[str]) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        for update_id, update in list(self._pending.items()):
            kind = next((k for k in update if k != "update_id"), None)
            if kind in UPDATE_KINDS and kind not in allowed:
                # Telegram never creates updates of kinds the bot did not ask for.
                del self._pending[update_id]
                continue
            batch.append(update)
            if len(batch) >= limit:
                break
        return batch

    # ------------------------------------------------------------------ methods

    async def _ok(self, args: dict[str, Any]) -> bool:
        return True

    async def _get_me(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Hotline (local)",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _get_updates(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        if self._webhook is not None:
            raise ApiError(
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
                409,
            )
        if "allowed_updates" in args:
            self._allowed = frozenset(args["allowed_updates"]) or DEFAULT_ALLOWED
        limit = min(max(int(args.get("limit", 100)), 1), 100)
        timeout = max(float(args.get("timeout", 0)), 0.0)
        self._confirm_below(args.get("offset"))
        if self._poll is not None:
            self._poll.set()  # a newer poll ends the older one, as Telegram does
            self._changed.notify()
        mine = self._poll = asyncio.Event()
        deadline = time.monotonic() + timeout
        try:
            while True:
                batch = self._deliverable(limit, self._allowed)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0 or self._closing:
                    return batch
                await self._changed.wait(remaining)
                if mine.is_set():
                    raise ApiError(
                        "Conflict: terminated by other getUpdates request; make sure that "
                        "only one bot instance is running",
                        409,
                    )
        finally:
            if self._poll is mine:
                self._poll = None

    async def _set_webhook(self, args: dict[str, Any]) -> bool:
        if not args["url"]:
            return await self._delete_webhook(args)
        if args.get("drop_pending_updates"):
            self._pending.clear()
        allowed = args.get("allowed_updates")
        self._webhook = _Webhook(
            url=args["url"],
            secret=args.get("secret_token"),
            max_connections=int(args.get("max_connections", 40)),
            allowed=frozenset(allowed) if allowed else self._allowed,
        )
        if self._poll is not None:
            self._poll.set()
        if self._delivery is None or self._delivery.done():
            self._delivery = asyncio.create_task(self._deliver_loop())
        self._changed.notify()
        return True

    async def _delete_webhook(self, args: dict[str, Any]) -> bool:
        self._webhook = None
        if args.get("drop_pending_updates"):
            self._pending.clear()
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
            self._delivery = None
        self._changed.notify()
        return True

    async def _get_webhook_info(self, args: dict[str, Any]) -> dict[str, Any]:
        hook = self._webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if hook:
            info["max_connections"] = hook.max_connections
            info["allowed_updates"] = sorted(hook.allowed)
        return info

    def _check_markup(self, markup: Any) -> dict[str, Any] | None:
        if markup is None:
            return None
        for row in markup.get("inline_keyboard", []) if isinstance(markup, dict) else []:
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                    raise ApiError("Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _bot_message(
        self, chat_id: Any, markup: dict[str, Any] | None, **fields: Any
    ) -> ChatMessage:
        """Record a message from the bot; only chats where someone wrote to it exist."""
        history = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if not history:
            raise ApiError("Bad Request: chat not found")
        keyboard = markup if markup and markup.get("inline_keyboard") else None
        message = ChatMessage(
            message_id=self._next_message_id(chat_id),
            chat=history[0].chat,
            sender={"id": self.bot_id, "is_bot": True, "first_name": "Hotline (local)"},
            from_bot=True,
            date=int(time.time()),
            reply_markup=keyboard,
            sent_markup=keyboard,
            **fields,
        )
        history.append(message)
        return message

    async def _send_message(self, args: dict[str, Any]) -> dict[str, Any]:
        text = args["text"]
        if not text.strip():
            raise ApiError("Bad Request: message text is empty")
        if utf16_length(text) > MAX_TEXT:
            raise ApiError("Bad Request: message is too long")
        markup = self._check_markup(args.get("reply_markup"))
        reply_to = self._reply_target(args)
        return self._bot_message(args["chat_id"], markup, text=text, reply_to=reply_to).to_api()

    def _reply_target(self, args: dict[str, Any]) -> int | None:
        """The message a send replies to (reply_parameters or reply_to_message_id)."""
        reply = args.get("reply_parameters") or {}
        reply_to = reply.get("message_id") if isinstance(reply, Mapping) else None
        if reply_to is None:
            reply_to = args.get("reply_to_message_id")
        if reply_to is not None and not any(
            m.message_id == reply_to for m in self._chats.get(args["chat_id"], [])
        ):
            if not (reply.get("allow_sending_without_reply") if reply else False):
                raise ApiError("Bad Request: message to be replied not found")
            reply_to = None
        return reply_to

    async def _edit_text(self, args: dict[str, Any]) -> dict[str, Any] | bool:
        if "inline_message_id" in args:
            return True
        chat_id, message_id = args.get("chat_id"), args.get("message_id")
        message = next(
            (m for m in self._chats.get(chat_id, []) if m.message_id == message_id and m.from_bot),
            None,
        )
        if message is None:
            raise ApiError("Bad Request: message to edit not found")
        if message.text == args["text"]:
            raise ApiError("Bad Request: message is not modified")
        message.text = args["text"]
        message.edit_date = int(time.time())
        return message.to_api()

    async def _send_document(self, args: dict[str, Any]) -> dict[str, Any]:
        document = args["document"]
        if not isinstance(document, Upload):
            raise ApiError("Bad Request: the local server only accepts uploaded documents")
        if len(document.data) > MAX_UPLOAD:
            raise ApiError("Request Entity Too Large", code=413)
        markup = self._check_markup(args.get("reply_markup"))
        reply_to = self._reply_target(args)
        file_id = _file_id()
        message = self._bot_message(
            args["chat_id"],
            markup,
            document=document,
            file_id=file_id,
            caption=args.get("caption"),
            reply_to=reply_to,
        )
        self._files[file_id] = message
        return message.to_api()

    async def _edit_reply_markup(self, args: dict[str, Any]) -> dict[str, Any] | bool:
        if "inline_message_id" in args:
            return True
        chat_id, message_id = args.get("chat_id"), args.get("message_id")
        if chat_id is None or message_id is None:
            raise ApiError("Bad Request: chat_id and message_id are required")
        message = next(
            (m for m in self._chats.get(chat_id, []) if m.message_id == message_id and m.from_bot),
            None,
        )
        if message is None:
            raise ApiError("Bad Request: message to edit not found")
        markup = self._check_markup(args.get("reply_markup")) or {"inline_keyboard": []}
        current = message.reply_markup or {"inline_keyboard": []}
        if markup == current or (
            not markup.get("inline_keyboard") and not current.get("inline_keyboard")
        ):
            raise ApiError(
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message"
            )
        message.reply_markup = markup if markup.get("inline_keyboard") else None
        message.edit_date = int(time.time())
        return message.to_api()

    async def _answer_callback_query(self, args: dict[str, Any]) -> bool:
        query = self._callbacks.get(args["callback_query_id"])
        if query is None or query["answered"]:
            raise ApiError(
                "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        query["answered"] = True
        query["text"] = args.get("text")
        return True

    async def _set_my_commands(self, args: dict[str, Any]) -> bool:
        for command in args["commands"]:
            name, description = command["command"], command["description"]
            if not (
                1 <= len(name) <= 32 and name == name.lower() and name.replace("_", "").isalnum()
            ):
                raise ApiError("Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise ApiError("Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        scope = (args.get("scope") or {"type": "default"})["type"]
        self.commands[(scope, args.get("language_code", ""))] = list(args["commands"])
        return True

    async def _get_my_commands(self, args: dict[str, Any]) -> list[dict[str, str]]:
        scope = (args.get("scope") or {"type": "default"})["type"]
        return self.commands.get((scope, args.get("language_code", "")), [])

    async def _delete_my_commands(self, args: dict[str, Any]) -> bool:
        scope = (args.get("scope") or {"type": "default"})["type"]
        self.commands.pop((scope, args.get("language_code", "")), None)
        return True

    async def _send_chat_action(self, args: dict[str, Any]) -> bool:
        return True

    async def _get_file(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._files.get(args["file_id"])
        if message is None or message.document is None:
            raise ApiError("Bad Request: invalid file_id")
        if len(message.document.data) > MAX_DOWNLOAD:
            raise ApiError("Bad Request: file is too big")
        return {
            "file_id": args["file_id"],
            "file_unique_id": args["file_id"][:16],
            "file_size": len(message.document.data),
            "file_path": f"documents/{args['file_id']}",
        }

    # ------------------------------------------------------------------ webhook delivery

    async def _deliver_loop(self) -> None:
        in_flight: dict[int, asyncio.Task[None]] = {}
        busy: set[Any] = set()
        async with aiohttp.ClientSession() as session:
            try:
                while self._webhook is not None and not self._closing:
                    hook = self._webhook
                    blocked: set[Any] = set()
                    for update in self._deliverable(100, hook.allowed):
                        chat = _chat_of(update)
                        if update["update_id"] in in_flight or chat in busy or chat in blocked:
                            blocked.add(chat)
                            continue
                        if len(in_flight) >= hook.max_connections:
                            break
                        busy.add(chat)
                        blocked.add(chat)
                        task = asyncio.create_task(self._post_update(session, hook, update))
                        in_flight[update["update_id"]] = task

                        def finished(
                            _: object, uid: int = update["update_id"], c: Any = chat
                        ) -> None:
                            in_flight.pop(uid, None)
                            busy.discard(c)
                            self._changed.notify()

                        task.add_done_callback(finished)
                    await self._changed.wait(1.0)
            finally:
                for task in in_flight.values():
                    task.cancel()
                await asyncio.gather(*in_flight.values(), return_exceptions=True)

    async def _post_update(
        self, session: aiohttp.ClientSession, hook: _Webhook, update: dict[str, Any]
    ) -> None:
        headers = {"Content-Type": "application/json"}
        if hook.secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret
        delay = 0.05
        while self._webhook is hook and not self._closing:
            try:
                async with session.post(
                    hook.url, data=json.dumps(update), headers=headers
                ) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self._pending.pop(update["update_id"], None)
                        return
            except (aiohttp.ClientError, OSError):
                pass
            self.webhook_failures += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    # ------------------------------------------------------------------ helpers

    def find_button_message(
        self, chat_id: int, label: str | None, data: str | None, message_id: int | None
    ) -> ChatMessage | None:
        messages = self.received(chat_id)
        if message_id is not None:
            return next((m for m in messages if m.message_id == message_id), None)
        for message in reversed(messages):
            buttons = message.buttons or message.sent_buttons
            if any(
                (label is None or lbl == label) and (data is None or d == data)
                for lbl, d in buttons
            ):
                return message
        return None


def _chat_of(update: Mapping[str, Any]) -> Any:
    """The chat an update belongs to, for per-chat delivery order (malformed: its own)."""
    try:
        for kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
            if kind in update:
                return update[kind]["chat"]["id"]
        if "callback_query" in update:
            return update["callback_query"]["from"]["id"]
    except (KeyError, TypeError):
        pass
    return ("update", update.get("update_id"))


def _file_id() -> str:
    return "BQAC" + secrets.token_urlsafe(24)


def _lower(methods: Iterable[str] | None) -> frozenset[str] | None:
    return None if methods is None else frozenset(m.lower() for m in methods)


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


async def _read_params(
    request: web.Request,
) -> tuple[dict[str, Any], dict[str, Upload], bool]:
    """(parameters, file parts, whether the values are form strings) of a Bot API call."""
    params: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.method not in ("POST", "PUT") or not request.body_exists:
        return params, uploads, True
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = await request.json()
        except ValueError as err:
            raise ApiError("Bad Request: can't parse JSON body") from err
        if not isinstance(body, dict):
            raise ApiError("Bad Request: the JSON body must be an object")
        params.update(body)
        return params, uploads, False
    if content_type == "multipart/form-data":
        reader = await request.multipart()
        async for part in reader:
            if part is None or not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                continue
            if part.filename is not None:
                uploads[part.name] = Upload(
                    part.filename,
                    bytes(await part.read()),
                    part.headers.get("Content-Type", "application/octet-stream"),
                )
            else:
                params[part.name] = await part.text()
        return params, uploads, True
    if content_type in ("application/x-www-form-urlencoded", ""):
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
        return params, uploads, True
    raise ApiError(f"Bad Request: unsupported Content-Type {content_type}")
