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
    "unsupported_message": {
        "ru": "Я понимаю только текст и кнопки.",
        "en": "I can only read text and buttons.",
    },
    "did_you_mean": {
        "ru": "Вы имели в виду одну из этих тем?",
        "en": "Did you mean one of these topics?",
    },
    "lawyer_button": {"ru": "Поговорить с юристом", "en": "Talk to a lawyer"},
    "error": {
        "ru": "Что-то пошло не так. Мы уже разбираемся. /start — меню.",
        "en": "Something went wrong on our side. /start for the menu.",
    },
}

TEXT_KEYS = frozenset(DEFAULT_TEXTS)

LANGUAGE_NAMES = MappingProxyType(
    {"ru": "Русский", "en": "English", "uk": "Українська", "be": "Беларуская", "kk": "Қазақша"}
)
