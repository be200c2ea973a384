"""The engine's own phrases, in every language the example bots use.

bot.yaml `texts:` overrides any of them; a language missing here falls back to English.
"""

from __future__ import annotations

from types import MappingProxyType

DEFAULT_TEXTS: dict[str, dict[str, str]] = {
    "not_understood": {
        "ru": "Я не понял вопрос. Выберите тему из меню или напишите иначе.",
        "en": "I did not understand. Pick a topic from the menu or put it another way.",
    },
    "invalid_input": {
        "ru": "Не получилось прочитать ответ. Попробуйте ещё раз.",
        "en": "I could not read that answer. Please try again.",
    },
    "invalid_choice": {
        "ru": "Пожалуйста, нажмите одну из кнопок или напишите её номер.",
        "en": "Please press one of the buttons or type its number.",
    },
    "moved_on": {
        "ru": "Этот вопрос уже позади. Вот текущий:",
        "en": "That question has moved on. Here is the current one:",
    },
    "help": {
        "ru": (
            "Команды:\n/start — меню\n/back — на шаг назад\n/restart — начать тему заново\n"
            "/language — язык\n/lawyer — связаться с юристом\n"
            "/forget — удалить всё, что бот о вас хранит\n/cancel — выйти из очереди к юристу\n"
            "/help — эта справка"
        ),
        "en": (
            "Commands:\n/start - menu\n/back - previous step\n/restart - start the topic again\n"
            "/language - language\n/lawyer - talk to a lawyer\n"
            "/forget - delete everything the bot keeps about you\n"
            "/cancel - leave the queue for a lawyer\n/help - this help"
        ),
    },
    "back_unavailable": {
        "ru": "Назад идти некуда.",
        "en": "There is no previous step.",
    },
    "forgotten": {
        "ru": "Всё, что бот хранил о вас, удалено. /start — начать заново.",
        "en": "Everything the bot kept about you has been deleted. /start to begin again.",
    },
    "language_prompt": {"ru": "Выберите язык:", "en": "Choose a language:"},
    "language_set": {"ru": "Язык: русский.", "en": "Language: English."},
    "handover_waiting": {
        "ru": "Вы в очереди к юристу. Пишите сюда, он увидит. /cancel — вернуться к боту.",
        "en": "You are in the queue for a lawyer. Write here and they will see it. "
        "/cancel to return to the bot.",
    },
    "handover_cancelled": {
        "ru": "Вы вышли из очереди к юристу.",
        "en": "You have left the queue for a lawyer.",
    },
    "handover_closed": {
        "ru": "Юрист завершил разговор. /start — меню.",
        "en": "The lawyer has closed the conversation. /start for the menu.",
    },
    # Said by the lawyers' desk (adapters/serve/handover.py), in the person's language; each
    # may use only the {placeholders} listed in TEXT_PLACEHOLDERS below.
    "handover_position": {
        "ru": "Ваше обращение зарегистрировано. Ваш номер в очереди: {position}.",
        "en": "Your request is registered. You are number {position} in the queue.",
    },
    "handover_moved_up": {
        "ru": "Ваш номер в очереди теперь: {position}.",
        "en": "You are now number {position} in the queue.",
    },
    "handover_taken": {
        "ru": "Юрист взял ваше обращение и ответит здесь.",
        "en": "A lawyer has taken your case and will answer here.",
    },
    "handover_off_hours": {
        "ru": "Юристы отвечают {hours} ({zone}). Ответа можно ждать начиная с: {next}. "
        "Ваши сообщения сохранятся, юрист их увидит.",
        "en": "Lawyers answer {hours} ({zone}). The next answer can be expected from {next}. "
        "Your messages are kept and will be shown to the lawyer.",
    },
    "handover_lawyer": {"ru": "Юрист: {text}", "en": "Lawyer: {text}"},
    "handover_lawyer_file": {
        "ru": "Юрист отправил вам файл:",
        "en": "The lawyer sent you a file:",
    },
    "handover_file_too_large": {
        "ru": "Этот файл слишком большой, юристу его не передать (не больше {limit}). "
        "Отправьте файл поменьше или фотографии страниц.",
        "en": "This file is too large to pass on to the lawyer (at most {limit}). "
        "Please send a smaller file, or photos of the pages.",
    },
    # Comma-separated, Monday first: how opening hours and the next opening are written.
    "handover_weekdays": {
        "ru": "понедельник,вторник,среда,четверг,пятница,суббота,воскресенье",
        "en": "Monday,Tuesday,Wednesday,Thursday,Friday,Saturday,Sunday",
    },
    "handover_weekdays_short": {
        "ru": "пн,вт,ср,чт,пт,сб,вс",
        "en": "Mon,Tue,Wed,Thu,Fri,Sat,Sun",
    },
    "unsupported_message": {
        "ru": "Я понимаю только текст и кнопки.",
        "en": "I can only read text and buttons.",
    },
    "did_you_mean": {
        "ru": "Вы имели в виду одну из этих тем?",
        "en": "Did you mean one of these topics?",
    },
    "lawyer_button": {"ru": "Поговорить с юристом", "en": "Talk to a lawyer"},
    "flows_updated": {
        "ru": "Мы обновили этот разговор, пока вы отвечали, поэтому начнём сначала. "
        "Извините за неудобство.",
        "en": "We updated this conversation while you were answering, so let's start again. "
        "Sorry for the trouble.",
    },
    "error": {
        "ru": "Что-то пошло не так. Мы уже разбираемся. /start — меню.",
        "en": "Something went wrong on our side. /start for the menu.",
    },
}

TEXT_KEYS = frozenset(DEFAULT_TEXTS)

# The {placeholders} a text may use (bot.yaml texts cannot use saved answers): the desk
# fills them in. Any other text uses none.
TEXT_PLACEHOLDERS: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        "handover_position": frozenset({"position"}),
        "handover_moved_up": frozenset({"position"}),
        "handover_off_hours": frozenset({"hours", "zone", "next"}),
        "handover_lawyer": frozenset({"text"}),
        "handover_file_too_large": frozenset({"limit"}),
    }
)

LANGUAGE_NAMES = MappingProxyType(
    {"ru": "Русский", "en": "English", "uk": "Українська", "be": "Беларуская", "kk": "Қазақша"}
)
