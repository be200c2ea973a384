"""The two python-telegram-bot baselines of the Telegram path benchmark (bench/telegram_path.py).

- `echo_application`: the floor of any PTB bot. A text is answered with the same text, a
  button press is answered (answerCallbackQuery) and its data sent back: one message per
  update, nothing stored.
- `conversation_application`: the example flow `detained_relative` (with the shared
  `collect_contacts` sub-flow it calls) written by hand the way a good PTB developer would:
  an `Application`, one `ConversationHandler`, states as ints, `CallbackQueryHandler`s for
  the buttons and `MessageHandler`s for the typed answers, answers in `context.user_data`,
  the texts in both bot languages. It says exactly what the hotline engine says for that
  flow (same texts, same buttons, the same invalid-answer replies, the draft complaint as a
  document), so that the two can be compared message for message (the benchmark checks it).

The texts are read once, at start, from the flows' YAML files (as a PTB bot reads its
translations from a resource file): copying the 3 KB of prose into this file would only let
the two bots drift apart. Nothing of the engine is used: no loader, no model, no runtime.

Documents are not made here (nor by the hotline side of the benchmark): both bots send the
same placeholder bytes (`PLACEHOLDER_DOCUMENT`), so neither pays for filling a Word template.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest
from telegram.warnings import PTBUserWarning

FLOW = "detained_relative"
CONTACTS = "collect_contacts"
# What a document step sends in this benchmark, on both sides (see the module docstring).
PLACEHOLDER_DOCUMENT = b"PK\x03\x04" + bytes(2044)

# The conversation's states.
(
    MENU,
    INTRO,
    RELATION,
    RELATIVE_NAME,
    RELATIVE_BIRTH,
    WHERE_HELD,
    HELD_SINCE,
    UNIT,
    CIRCUMSTANCES,
    APPLICANT_NAME,
    CONTACT_CHOICE,
    PHONE,
    ASK_EMAIL,
    EMAIL,
    MEDIA,
) = range(15)

_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_PHONE_NOISE = re.compile(r"[\s\-().]")
_PHONE = re.compile(r"^\+?\d{7,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
# Any PTB application of this module (default context types).
PtbApplication = Application[Any, Any, Any, Any, Any, Any]
# (min, max) length of the answers to the free-text questions.
_TEXT_LIMITS = {
    RELATIVE_NAME: (5, 200),
    WHERE_HELD: (2, 1000),
    UNIT: (2, 200),
    CIRCUMSTANCES: (10, 3000),
    APPLICANT_NAME: (5, 200),
}


# --------------------------------------------------------------------------- texts


@dataclass(frozen=True, slots=True)
class Texts:
    """Every text the bot says, by language: `say[(flow, step)]`, `invalid[...]`, the
    button labels `labels[...]`, the menu and its topic titles, the document's name."""

    languages: tuple[str, ...]
    menu: Mapping[str, str]
    topics: tuple[tuple[str, Mapping[str, str]], ...]  # (flow id, title) in menu order
    say: Mapping[tuple[str, str], Mapping[str, str]]
    invalid: Mapping[tuple[str, str], Mapping[str, str]]
    labels: Mapping[tuple[str, str], tuple[Mapping[str, str], ...]]
    handover: Mapping[str, str]
    document_name: Mapping[str, str]

    def language(self, code: str | None) -> str:
        """The person's language: their Telegram language if the bot speaks it."""
        return code if code in self.languages else self.languages[0]


def load_texts(flows_dir: Path) -> Texts:
    """The texts of the flow and its sub-flow, the menu and the topics' titles."""

    def read(name: str) -> dict[str, Any]:
        with open(flows_dir / f"{name}.yaml", encoding="utf-8") as file:
            data: dict[str, Any] = yaml.safe_load(file)
        return data

    bot = read("bot")
    say: dict[tuple[str, str], Mapping[str, str]] = {}
    invalid: dict[tuple[str, str], Mapping[str, str]] = {}
    labels: dict[tuple[str, str], tuple[Mapping[str, str], ...]] = {}
    handover: Mapping[str, str] = {}
    document_name: Mapping[str, str] = {}
    for flow in (FLOW, CONTACTS):
        for name, step in read(flow)["steps"].items():
            if "say" in step:
                say[(flow, name)] = step["say"]
            if "invalid" in step:
                invalid[(flow, name)] = step["invalid"]
            if "choices" in step:
                labels[(flow, name)] = tuple(c["label"] for c in step["choices"])
            if "handover" in step:
                handover = step["handover"]["say"]
            if "document" in step:
                document_name = step["document"]["name"]
    topics = tuple((flow, read(flow)["title"]) for flow in bot["menu"]["flows"])
    return Texts(
        tuple(bot["languages"]),
        bot["menu"]["say"],
        topics,
        say,
        invalid,
        labels,
        handover,
        document_name,
    )


# --------------------------------------------------------------------------- the flow


class DetainedRelativeBot:
    """The hand-written flow: one method per state, as PTB's conversation examples do."""

    def __init__(self, texts: Texts) -> None:
        self.texts = texts

    # ------------------------------------------------------------------ helpers

    def _say(self, context: ContextTypes.DEFAULT_TYPE, step: str, flow: str = FLOW) -> str:
        return self.texts.say[(flow, step)][context.user_data["lang"]]

    def _keyboard(
        self, context: ContextTypes.DEFAULT_TYPE, step: str, data: tuple[str, ...], flow: str = FLOW
    ) -> InlineKeyboardMarkup:
        lang = context.user_data["lang"]
        rows = [
            [InlineKeyboardButton(label[lang], callback_data=payload)]
            for label, payload in zip(self.texts.labels[(flow, step)], data, strict=True)
        ]
        return InlineKeyboardMarkup(rows)

    async def _ask(
        self,
        update: Update,
        context: ContextTypes.DEFAULT_TYPE,
        step: str,
        buttons: tuple[str, ...] = (),
        flow: str = FLOW,
    ) -> None:
        markup = self._keyboard(context, step, buttons, flow) if buttons else None
        chat = update.effective_chat
        assert chat is not None
        await chat.send_message(self._say(context, step, flow), reply_markup=markup)

    async def _refuse(
        self, update: Update, context: ContextTypes.DEFAULT_TYPE, step: str, flow: str = FLOW
    ) -> None:
        """An answer that does not fit: say why, then the question again."""
        message = update.message
        assert message is not None
        await message.reply_text(self.texts.invalid[(flow, step)][context.user_data["lang"]])
        await message.reply_text(self._say(context, step, flow))

    @staticmethod
    async def _pressed(update: Update) -> str:
        """Answer the press and take the keyboard off its message; the button's data."""
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer()
        await query.edit_message_reply_markup(reply_markup=None)
        return query.data

    @staticmethod
    def _typed(update: Update) -> str:
        message = update.message
        assert message is not None and message.text is not None
        return message.text.strip()

    async def _text_answer(
        self,
        update: Update,
        context: ContextTypes.DEFAULT_TYPE,
        state: int,
        step: str,
        save: str,
        next_step: str,
        next_state: int,
        buttons: tuple[str, ...] = (),
        next_flow: str = FLOW,
    ) -> int | None:
        text = self._typed(update)
        low, high = _TEXT_LIMITS[state]
        if not low <= len(text) <= high:
            await self._refuse(update, context, step)
            return None
        context.user_data[save] = text
        await self._ask(update, context, next_step, buttons, next_flow)
        return next_state

    # ------------------------------------------------------------------ entry

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        user = update.effective_user
        chat = update.effective_chat
        assert user is not None and chat is not None and context.user_data is not None
        context.user_data.clear()
        lang = context.user_data["lang"] = self.texts.language(user.language_code)
        rows = [
            [InlineKeyboardButton(title[lang], callback_data=f"topic:{flow}")]
            for flow, title in self.texts.topics
        ]
        await chat.send_message(self.texts.menu[lang], reply_markup=InlineKeyboardMarkup(rows))
        return MENU

    async def topic(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        if await self._pressed(update) != f"topic:{FLOW}":
            # The other topics are not part of this baseline (the benchmark never picks them).
            return ConversationHandler.END
        await self._ask(update, context, "start", ("intro:start", "intro:lawyer"))
        return INTRO

    async def intro(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        if await self._pressed(update) == "intro:lawyer":
            return await self._to_lawyer(update, context)
        buttons = tuple(f"relation:{r}" for r in ("son", "husband", "brother", "father", "other"))
        await self._ask(update, context, "relation", buttons)
        return RELATION

    async def relation(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        data = await self._pressed(update)
        context.user_data["relation"] = data.removeprefix("relation:")
        await self._ask(update, context, "relative_name")
        return RELATIVE_NAME

    # ------------------------------------------------------------------ typed answers

    async def relative_name(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int | None:
        return await self._text_answer(
            update,
            context,
            RELATIVE_NAME,
            "relative_name",
            "relative_name",
            "relative_birth",
            RELATIVE_BIRTH,
        )

    async def relative_birth(
        self, update: Update, context: ContextTypes.DEFAULT_TYPE
    ) -> int | None:
        born = _date(self._typed(update))
        if born is None:
            await self._refuse(update, context, "relative_birth")
            return None
        context.user_data["relative_birth"] = born
        await self._ask(update, context, "where_held")
        return WHERE_HELD

    async def where_held(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int | None:
        return await self._text_answer(
            update, context, WHERE_HELD, "where_held", "where_held", "held_since", HELD_SINCE
        )

    async def held_since(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int | None:
        since = _date(self._typed(update))
        if since is None:
            await self._refuse(update, context, "held_since")
            return None
        if since > dt.date.today():
            message = update.message
            assert message is not None
            await message.reply_text(self._say(context, "future_date"))
            await self._ask(update, context, "held_since")
            return None
        context.user_data["held_since"] = since
        await self._ask(update, context, "unit")
        return UNIT

    async def unit(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int | None:
        return await self._text_answer(
            update, context, UNIT, "unit", "unit", "circumstances", CIRCUMSTANCES
        )

    async def circumstances(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int | None:
        return await self._text_answer(
            update,
            context,
            CIRCUMSTANCES,
            "circumstances",
            "circumstances",
            "applicant_name",
            APPLICANT_NAME,
        )

    async def applicant_name(
        self, update: Update, context: ContextTypes.DEFAULT_TYPE
    ) -> int | None:
        return await self._text_answer(
            update,
            context,
            APPLICANT_NAME,
            "applicant_name",
            "applicant_name",
            "start",
            CONTACT_CHOICE,
            ("contacts:phone", "contacts:none"),
            CONTACTS,
        )

    # ------------------------------------------------------------------ contacts

    async def contact_choice(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        if await self._pressed(update) == "contacts:none":
            await self._ask(update, context, "no_contacts", flow=CONTACTS)
            return await self._summary(update, context)
        await self._ask(update, context, "phone", flow=CONTACTS)
        return PHONE

    async def phone(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int | None:
        number = _PHONE_NOISE.sub("", self._typed(update))
        if not _PHONE.match(number):
            await self._refuse(update, context, "phone", CONTACTS)
            return None
        context.user_data["phone"] = number
        await self._ask(update, context, "ask_email", ("email:add", "email:no"), CONTACTS)
        return ASK_EMAIL

    async def ask_email(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        if await self._pressed(update) == "email:add":
            await self._ask(update, context, "email", flow=CONTACTS)
            return EMAIL
        return await self._saved(update, context)

    async def email(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int | None:
        address = self._typed(update)
        if len(address) > 254 or not _EMAIL.match(address):
            await self._refuse(update, context, "email", CONTACTS)
            return None
        context.user_data["email"] = address
        return await self._saved(update, context)

    async def _saved(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        chat = update.effective_chat
        assert chat is not None and context.user_data is not None
        text = self._say(context, "saved", CONTACTS).format(phone=context.user_data["phone"])
        await chat.send_message(text)
        return await self._summary(update, context)

    # ------------------------------------------------------------------ the end

    async def _summary(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        chat = update.effective_chat
        data = context.user_data
        assert chat is not None and data is not None
        summary = self._say(context, "summary").format(
            applicant_name=data["applicant_name"], relative_name=data["relative_name"]
        )
        await chat.send_message(summary)
        await chat.send_document(
            PLACEHOLDER_DOCUMENT, filename=self.texts.document_name[data["lang"]]
        )
        await self._ask(update, context, "media", ("media:lawyer", "media:done"))
        return MEDIA

    async def media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        if await self._pressed(update) == "media:lawyer":
            return await self._to_lawyer(update, context)
        await self._ask(update, context, "done")
        return ConversationHandler.END

    async def _to_lawyer(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        chat = update.effective_chat
        assert chat is not None
        await chat.send_message(self.texts.handover[context.user_data["lang"]])
        return ConversationHandler.END

    # ------------------------------------------------------------------ wiring

    def handler(self) -> ConversationHandler[Any]:
        typed = filters.TEXT & ~filters.COMMAND

        def press(callback: Any, prefix: str) -> CallbackQueryHandler[Any, Any]:
            return CallbackQueryHandler(callback, pattern=f"^{prefix}:")

        states: dict[object, list[Any]] = {
            MENU: [press(self.topic, "topic")],
            INTRO: [press(self.intro, "intro")],
            RELATION: [press(self.relation, "relation")],
            RELATIVE_NAME: [MessageHandler(typed, self.relative_name)],
            RELATIVE_BIRTH: [MessageHandler(typed, self.relative_birth)],
            WHERE_HELD: [MessageHandler(typed, self.where_held)],
            HELD_SINCE: [MessageHandler(typed, self.held_since)],
            UNIT: [MessageHandler(typed, self.unit)],
            CIRCUMSTANCES: [MessageHandler(typed, self.circumstances)],
            APPLICANT_NAME: [MessageHandler(typed, self.applicant_name)],
            CONTACT_CHOICE: [press(self.contact_choice, "contacts")],
            PHONE: [MessageHandler(typed, self.phone)],
            ASK_EMAIL: [press(self.ask_email, "email")],
            EMAIL: [MessageHandler(typed, self.email)],
            MEDIA: [press(self.media, "media")],
        }
        with warnings.catch_warnings():
            # PTB warns that with per_message=False a CallbackQueryHandler is tracked per
            # chat rather than per message: that is what this flow wants (its keyboards
            # belong to the conversation, and typed answers must reach it too).
            warnings.filterwarnings("ignore", category=PTBUserWarning)
            return ConversationHandler(
                entry_points=[CommandHandler("start", self.start)],
                states=states,
                fallbacks=[CommandHandler("start", self.start)],  # /start begins again
            )


def _date(text: str) -> dt.date | None:
    """DD.MM.YYYY, a date that exists."""
    match = _DATE.match(text)
    if match is None:
        return None
    day, month, year = (int(g) for g in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


# --------------------------------------------------------------------------- the echo


async def echo_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.message
    assert message is not None and message.text is not None
    await message.reply_text(message.text)


async def echo_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.reply_text(query.data)


# --------------------------------------------------------------------------- applications


def _application(token: str, request: BaseRequest, updates_request: BaseRequest) -> PtbApplication:
    """A PTB Application on the given request objects; updates are put in its update_queue
    by the caller (no Updater: the benchmark is the network)."""
    return (
        Application.builder()
        .token(token)
        .request(request)
        .get_updates_request(updates_request)
        .updater(None)
        .build()
    )


def echo_application(
    token: str, request: BaseRequest, updates_request: BaseRequest
) -> PtbApplication:
    app = _application(token, request, updates_request)
    app.add_handler(MessageHandler(filters.TEXT, echo_text))
    app.add_handler(CallbackQueryHandler(echo_press))
    return app


def conversation_application(
    token: str, request: BaseRequest, updates_request: BaseRequest, texts: Texts
) -> PtbApplication:
    app = _application(token, request, updates_request)
    app.add_handler(DetainedRelativeBot(texts).handler())
    return app
