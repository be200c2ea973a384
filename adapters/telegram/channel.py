"""The Telegram channel: updates in (polling or webhook), actions out, through PTB's ExtBot.

    channel = TelegramChannel(config, token)
    channel.bind(flows)              # the bot's languages, for the command menu
    await channel.start(hub.deliver) # getMe, setMyCommands, then polling or the webhook
    ...
    await channel.stop()             # stop receiving, finish in-flight updates, confirm them

Every Bot API call goes through python-telegram-bot's `ExtBot` with `HotlineRateLimiter`
(rate limits, 429 retry_after, network retries). Receiving is ours (see `polling` and
`webhook`): each raw update (a JSON dict) is read on its own by `convert.read_update`
(`submit`) into `Work`, and handled one at a time per chat (`ordering.ChatQueues`), chats
concurrently; a press is first answered (answerCallbackQuery, always) and its keyboard
removed (editMessageReplyMarkup), then the event goes to the hub, which returns once the
engine's actions were performed through `perform`.

Operators' groups (hand-over to lawyers, `adapters/serve/handover.py`): messages in the
groups given to `watch_rooms` go to the desk as `OperatorMessage`s (the replied-to message as
`thread_id`), never to the engine; `post_to_room` posts there as replies, `edit_in_room`
edits a ticket. Files pass by reference (a file_id): `fetch_file` downloads one (getFile, up
to 20 MB), `post_file_to_room` posts one as a document reply (up to 50 MB).

Nothing of a message's content is logged; an update that cannot be read is logged by its
update_id only.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from telegram import BotCommand, InputFile, ReplyParameters
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, TelegramError
from telegram.ext import ExtBot
from telegram.request import BaseRequest, HTTPXRequest
from telegram.warnings import PTBUserWarning

from adapters.serve.channel import (
    Channel,
    Deliver,
    FileTooLarge,
    OperatorHandler,
    Undeliverable,
)
from adapters.serve.config import ConfigError
from adapters.telegram.aiohttp_request import AiohttpRequest
from adapters.telegram.config import TOKEN_ENV, TelegramConfig
from adapters.telegram.convert import (
    ALLOWED_UPDATES,
    CHANNEL,
    Work,
    command_descriptions,
    keyboard,
    read_update,
    split_text,
)
from adapters.telegram.logging import protect
from adapters.telegram.ordering import ChatQueues
from adapters.telegram.polling import Poller
from adapters.telegram.ratelimit import HotlineRateLimiter
from adapters.telegram.webhook import WebhookServer
from engine.conversation import (
    Action,
    CancelHandover,
    ForgetUser,
    RelayToOperator,
    SendDocument,
    SendText,
    StartHandover,
)
from engine.model import FlowSet

log = logging.getLogger(__name__)

DRAIN_SECONDS = 30.0
# What the cloud Bot API lets a bot download (getFile) and upload (sendDocument).
DOWNLOAD_LIMIT = 20 * 1024 * 1024
UPLOAD_LIMIT = 50 * 1024 * 1024
# A step may say nothing and only show buttons; Telegram needs some text to carry them.
EMPTY_TEXT = "…"


class TelegramChannel(Channel):
    """`Channel` for Telegram; see the module docstring."""

    name = CHANNEL

    def __init__(
        self,
        config: TelegramConfig,
        token: str,
        *,
        webhook_secret: str | None = None,
        request: BaseRequest | None = None,
        updates_request: BaseRequest | None = None,
    ) -> None:
        if config.mode == "webhook" and not webhook_secret:
            raise ValueError("webhook mode needs the webhook secret")
        self.config = config
        self._token = token
        self._webhook_secret = webhook_secret
        self._request = request
        self._updates_request = updates_request
        self._languages: tuple[str, ...] = ()
        self._bot: ExtBot[Any] | None = None
        self._deliver: Deliver | None = None
        self._queues = ChatQueues(config.concurrency)
        self._poller: Poller | None = None
        self._webhook: WebhookServer | None = None
        self._undo_logging: Callable[[], None] | None = None
        self.username: str | None = None
        self.skipped = 0  # updates that could not be read
        self._operator_chats: frozenset[int] = frozenset()
        self._operator_handler: OperatorHandler | None = None

    # ------------------------------------------------------------------ set-up

    def bind(self, flows: FlowSet) -> None:
        """The loaded flows: their languages name the command menu's translations."""
        self._languages = tuple(flows.bot.languages)

    @property
    def bot(self) -> ExtBot[Any]:
        if self._bot is None:
            raise RuntimeError("the Telegram channel is not started")
        return self._bot

    @property
    def webhook_port(self) -> int | None:
        return self._webhook.port if self._webhook is not None else None

    def _make_bot(self) -> ExtBot[Any]:
        c = self.config
        t = c.timeouts
        # `http_client` (config): aiohttp costs about a third of httpx's CPU per Bot API
        # call (README, "Benchmark"); both take the same arguments.
        make: type[AiohttpRequest] | type[HTTPXRequest] = (
            AiohttpRequest if c.http_client == "aiohttp" else HTTPXRequest
        )
        request = self._request or make(
            connection_pool_size=c.connection_pool_size,
            read_timeout=t.read,
            write_timeout=t.write,
            connect_timeout=t.connect,
            pool_timeout=t.pool,
            media_write_timeout=t.write,
        )
        updates_request = self._updates_request or make(
            connection_pool_size=2,
            read_timeout=t.read,
            write_timeout=t.write,
            connect_timeout=t.connect,
            pool_timeout=t.pool,
        )
        return ExtBot(
            self._token,
            base_url=c.base_url,
            base_file_url=c.base_file_url,
            request=request,
            get_updates_request=updates_request,
            rate_limiter=HotlineRateLimiter(c.rate_limit),
        )

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        # The raw calls of `_call` are on purpose (PTB advises its typed methods, which
        # parse every answer); set here so that it holds whoever reset the filters.
        warnings.filterwarnings("ignore", message=r"Please use 'Bot\.", category=PTBUserWarning)
        # Before the bot exists: PTB logs its base URL (with the token) when built.
        self._undo_logging = protect(self._token)
        self._bot = self._make_bot()
        try:
            await self._initialize()
            self.username = self.bot.username
            if self.config.commands:
                await self._register_commands()
            await self._start_receiving()
        except BaseException as err:
            await self.stop()
            if isinstance(err, TelegramError):
                raise ConfigError(
                    f"Telegram refused to set up the {self.config.mode} mode: {err.message}"
                ) from None
            raise

    async def _start_receiving(self) -> None:
        if self.config.mode == "polling":
            # A webhook left from an earlier run would make every getUpdates a 409.
            await self.bot.delete_webhook(drop_pending_updates=False)
            self._poller = Poller(
                self.bot,
                self.submit,
                allowed_updates=ALLOWED_UPDATES,
                timeout=self.config.poll_timeout,
                backoff_initial=self.config.rate_limit.backoff_initial,
                backoff_max=self.config.rate_limit.backoff_max,
                read_timeout=self.config.timeouts.read,
                workers=self.config.concurrency,
            )
            self._poller.start()
        else:
            hook = self.config.webhook
            assert hook is not None and self._webhook_secret is not None
            self._webhook = WebhookServer(
                self.submit,
                self._webhook_secret,
                path=hook.served_path,
                listen=hook.listen,
                port=hook.port,
                reuse_port=hook.reuse_port,
            )
            await self._webhook.start()
            await self.bot.set_webhook(
                hook.url,
                secret_token=self._webhook_secret,
                allowed_updates=list(ALLOWED_UPDATES),
                max_connections=hook.max_connections,
            )

    async def _initialize(self) -> None:
        """getMe (the rate limiter already retried network errors); a rejected token or an
        unreachable API is a ConfigError that says what to check."""
        try:
            await self.bot.initialize()
        except InvalidToken:
            raise ConfigError(
                f"Telegram rejected {TOKEN_ENV}: check it with @BotFather "
                "(/mybots, API Token); it may have been revoked"
            ) from None
        except NetworkError as err:
            if isinstance(err, BadRequest):
                raise
            raise ConfigError(
                f"cannot reach the Telegram Bot API at {self.config.base_url}... "
                f"({type(err).__name__}); check the network or `api_url`"
            ) from None

    async def _register_commands(self) -> None:
        """The command menu in every bot language, the first one also as the default."""
        try:
            if not self._languages:
                log.info("no flows bound to the Telegram channel: command menu in English only")
                await self.bot.set_my_commands(_commands("en"))
                return
            for language in self._languages:
                await self.bot.set_my_commands(_commands(language), language_code=language)
            await self.bot.set_my_commands(_commands(self._languages[0]))
        except TelegramError as err:
            log.warning("could not register the command menu (%s)", type(err).__name__)

    # ------------------------------------------------------------------ receiving

    def submit(self, raw: Mapping[str, Any]) -> asyncio.Future[None]:
        """Read one raw update and start handling it; the future is done once handled.
        An update that cannot be read is skipped (only its update_id is logged)."""
        try:
            # The raw dict, not PTB's `Update.de_json`: the rules read a dozen fields, and
            # building the whole object tree cost 20-30 times as much (bench/README.md).
            work = read_update(raw, self.username, self._operator_chats)
        except Exception as err:  # malformed (MalformedUpdate) or not: skip it, go on
            # The id and the kind of error only: the message may hold anything.
            update_id = raw.get("update_id") if isinstance(raw, Mapping) else None
            shown = update_id if type(update_id) is int else "without an id"
            log.warning("skipping update %s: it could not be read (%s)", shown, type(err).__name__)
            self.skipped += 1
            return _done()
        if work.chat is None:
            if work.callback_query_id is None:
                return _done()
            return self._queues.submit(
                ("query", work.callback_query_id), lambda: self._handle(work)
            )
        return self._queues.submit(work.chat, lambda: self._handle(work))

    async def _handle(self, work: Work) -> None:
        if work.keyboard is not None:
            # Both calls at once: two round trips to Telegram in the time of one. One task
            # beside this one rather than `gather`'s two: a third of all updates are presses.
            answering = asyncio.create_task(self._answer_query(work.callback_query_id))
            try:
                await self._remove_keyboard(work.keyboard)
            except BaseException:
                answering.cancel()
                raise
            await answering
        elif work.callback_query_id is not None:
            await self._answer_query(work.callback_query_id)
        if work.event is not None:
            assert self._deliver is not None
            await self._deliver(work.event)
        if work.operator is not None and self._operator_handler is not None:
            await self._operator_handler(work.operator)

    async def _answer_query(self, query_id: str | None) -> None:
        if query_id is not None:
            arguments = {"callback_query_id": query_id}
            await _quietly(self._call("answerCallbackQuery", arguments), "answerCallbackQuery")

    async def _remove_keyboard(self, where: tuple[int, int] | None) -> None:
        if where is not None:
            chat_id, message_id = where
            # No reply_markup at all removes the inline keyboard.
            arguments = {"chat_id": chat_id, "message_id": message_id}
            await _quietly(
                self._call("editMessageReplyMarkup", arguments), "editMessageReplyMarkup"
            )

    # ------------------------------------------------------------------ sending

    async def perform(self, action: Action, *, idempotency_key: str | None = None) -> None:
        if isinstance(action, SendText):
            await self._send_text(action)
        elif isinstance(action, SendDocument):
            await self._send_document(action)
        elif isinstance(action, StartHandover | RelayToOperator | CancelHandover | ForgetUser):
            # The person's side of these arrives as SendText; operators are another channel's.
            return
        else:
            raise TypeError(f"the Telegram channel cannot perform {type(action).__name__}")

    # ------------------------------------------------------------------ operators' groups

    def watch_rooms(self, rooms: Collection[str], handler: OperatorHandler) -> None:
        """The operators' groups (chat ids): their messages go to `handler`. The bot must
        be a member; with privacy mode on (BotFather's default) it still receives commands
        and replies to its own messages, which is all the desk needs."""
        self._operator_chats = frozenset(int(room) for room in rooms)
        self._operator_handler = handler

    async def post_to_room(self, room: str, text: str, thread_id: str | None = None) -> str:
        parts = split_text(text)
        first: str | None = None
        for part in parts:
            message = await self.bot.send_message(
                int(room),
                part,
                reply_parameters=(
                    ReplyParameters(int(thread_id), allow_sending_without_reply=True)
                    if thread_id is not None
                    else None
                ),
            )
            first = first or str(message.message_id)
        assert first is not None
        return first

    async def edit_in_room(self, room: str, message_id: str, text: str) -> None:
        await self.bot.edit_message_text(text, chat_id=int(room), message_id=int(message_id))

    # ------------------------------------------------------------------ files (hand-over)

    download_limit = DOWNLOAD_LIMIT

    async def fetch_file(self, ref: str) -> bytes:
        """getFile, then the download (a file_id of a person's or an operator's file).
        Telegram hands bots files of up to 20 MB; a larger one is `FileTooLarge`."""
        try:
            file = await self.bot.get_file(ref)
        except BadRequest as err:
            if "too big" in err.message.lower():
                raise FileTooLarge(DOWNLOAD_LIMIT) from None
            raise
        return bytes(await file.download_as_bytearray())

    async def upload_limit(self) -> int | None:
        return UPLOAD_LIMIT

    async def post_file_to_room(
        self,
        room: str,
        file_name: str,
        mime_type: str,
        data: bytes,
        thread_id: str | None = None,
    ) -> str:
        if len(data) > UPLOAD_LIMIT:
            raise FileTooLarge(UPLOAD_LIMIT)
        document = InputFile(data, filename=file_name)
        document.mimetype = mime_type
        message = await self.bot.send_document(
            int(room),
            document,
            reply_parameters=(
                ReplyParameters(int(thread_id), allow_sending_without_reply=True)
                if thread_id is not None
                else None
            ),
        )
        return str(message.message_id)

    async def _send_text(self, action: SendText) -> None:
        chat_id = int(action.to.chat)
        markup = keyboard(action.buttons)
        text = action.text if action.text.strip() else (EMPTY_TEXT if markup else "")
        if not text:
            return
        parts = split_text(text)
        for index, part in enumerate(parts):
            arguments: dict[str, Any] = {"chat_id": chat_id, "text": part}
            if markup is not None and index == len(parts) - 1:
                arguments["reply_markup"] = markup
            await _unless_blocked(self._call("sendMessage", arguments))

    async def _call(self, method: str, arguments: dict[str, Any]) -> None:
        """A Bot API call whose answer the channel does not read: made raw (through the
        same rate limiter and retries), so the answer is not parsed into PTB objects, a
        third of the Telegram path's CPU when every sent Message was (bench/README.md)."""
        await self.bot.do_api_request(method, api_kwargs=arguments, return_type=None)

    async def _send_document(self, action: SendDocument) -> None:
        document = InputFile(action.data, filename=action.file_name)
        document.mimetype = action.mime_type
        await _unless_blocked(self.bot.send_document(int(action.to.chat), document))

    # ------------------------------------------------------------------ stopping

    async def stop(self) -> None:
        if self._poller is not None:
            await self._poller.stop()
        if self._webhook is not None:
            await self._webhook.stop()
        if not await self._queues.join(DRAIN_SECONDS):
            log.warning("stopped with updates still being handled; Telegram will resend them")
            await self._queues.cancel()
        if self._poller is not None:
            await self._poller.acknowledge()
            self._poller = None
        self._webhook = None
        await self._close_bot()
        if self._undo_logging is not None:
            self._undo_logging()
            self._undo_logging = None

    async def _close_bot(self) -> None:
        if self._bot is not None:
            try:
                await self._bot.shutdown()
            except Exception as err:  # closing must not hide why we stop
                log.warning("closing the Bot API client failed (%s)", type(err).__name__)
            self._bot = None


def _commands(language: str) -> list[BotCommand]:
    return [BotCommand(name, text) for name, text in command_descriptions(language)]


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


async def _quietly(call: Awaitable[object], what: str) -> None:
    """Housekeeping calls (answer a press, remove a keyboard): a failure is only logged."""
    try:
        await call
    except TelegramError as err:
        # "query is too old", "message is not modified", ...: nothing to do about them.
        log.info("%s failed (%s)", what, type(err).__name__)


async def _unless_blocked(call: Awaitable[object]) -> None:
    """A person who blocked the bot cannot be written to: drop, don't retry or raise. A
    request Telegram refuses as bad would be refused again: `Undeliverable` (the hub drops
    it); network errors and flood control propagate, and the hub retries later."""
    try:
        await call
    except Forbidden:
        log.info("a message was dropped: the person has blocked the bot")
    except BadRequest as err:
        raise Undeliverable(f"telegram refused the request ({err.message[:120]})") from None
