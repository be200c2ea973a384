"""Generate a large, realistic, *valid* flows folder: the load-and-check benchmark's input.

`generate(folder, flows=20, steps=100)` writes bot.yaml and `flows` files of `steps` steps
each, every text in Russian and English. Each flow asks a name and an age, then repeats a
block of ten steps that together use every feature of the format:

    0 choices (one sets a value; some blocks also jump into another flow: FLOW.STEP)
    1 text input          2 branch on `age >= 18 and len(name) >= 2`
    3 say + goto ({name}) 4 date input
    5 branch on days_until()/age() of that date, three arms
    6 input of another type (integer, number, phone, email, regex, one_of), whose
      question quotes the date: "{dNNN}"
    7 call of the shared sub-flow gen_00 (+ goto)
    8 choices: a lawyer or go on      9 handover to the lawyers' queue

and ends with `end: true`. Every move goes forward (or to the start of a block of another
flow), so every step is reachable, every path reaches an end or a human, and every `{var}`
and `when` variable is saved on every path before it is used: the folder must load with no
error and no warning. gen_00 is the sub-flow that the others `call`; gen_01.. are in the
menu (the first six) or reached by their `match` phrases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

BLOCK = 10
_SENTENCES = {
    "ru": [
        "Это демонстрационный текст: его должны проверить юристы организации.",
        "Призывная комиссия принимает решение на заседании, приходить туда нужно лично.",
        "Сохраните копии всех документов, которые вы подписали или сдали в военкомат.",
        "Если срок уже прошёл, всё равно подавайте заявление: его обязаны рассмотреть.",
        "Решение комиссии можно обжаловать в вышестоящую комиссию или в суд.",
        "Не сообщайте лишних личных данных — только то, что нужно для дела.",
        "Юрист может ответить прямо здесь, в этом чате, обычно в течение дня.",
    ],
    "en": [
        "This is an illustration, to be reviewed by the organisation's lawyers.",
        "The draft commission decides at a meeting, which you should attend in person.",
        "Keep copies of every document you sign or hand in at the commissariat.",
        "If the deadline has passed, file anyway: the application must still be considered.",
        "The commission's decision can be appealed to a higher commission or in court.",
        "Please share only the personal details the case needs.",
        "A lawyer can answer right here in this chat, usually within a day.",
    ],
}
_TOPICS = {
    "ru": ["повестка", "отсрочка", "медкомиссия", "увольнение", "задержание", "контракт"],
    "en": ["summons", "deferment", "medical board", "discharge", "detention", "contract"],
}
_LANGS = ("ru", "en")


def _prose(seed: int, count: int, lead: dict[str, str] | None = None) -> dict[str, str]:
    """A ru+en text of `count` sentences, optionally after a lead-in per language."""
    result = {}
    for lang in _LANGS:
        pool = _SENTENCES[lang]
        parts = [pool[(seed + i * 3) % len(pool)] for i in range(count)]
        if lead:
            parts.insert(0, lead[lang])
        result[lang] = " ".join(parts)
    return result


def _text(ru: str, en: str) -> dict[str, str]:
    return {"ru": ru, "en": en}


def _name(k: int) -> str:
    return f"s{k:03d}"


def _flow_id(index: int) -> str:
    return f"gen_{index:02d}"


def _typed_input(k: int, variant: int) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(input spec, question, invalid text) of block variant `variant`."""
    save = f"v{k}"
    kinds: list[tuple[dict[str, Any], dict[str, str], dict[str, str]]] = [
        (
            {"save": save, "type": "integer", "min": 0, "max": 100},
            _text("Сколько полных лет вы служите?", "How many full years have you served?"),
            _text("Напишите число от 0 до 100.", "Please type a number from 0 to 100."),
        ),
        (
            {"save": save, "type": "number", "min": 0},
            _text("Какой размер выплаты, в тысячах рублей?", "How large is the payment, in k?"),
            _text("Напишите число, например 12,5.", "Please type a number such as 12.5."),
        ),
        (
            {"save": save, "type": "phone"},
            _text("Телефон для связи с кодом страны?", "A phone number with the country code?"),
            _text("Напишите номер цифрами: +7 900 123-45-67.", "Type digits: +7 900 123-45-67."),
        ),
        (
            {"save": save, "type": "email"},
            _text("Адрес электронной почты?", "Your e-mail address?"),
            _text("Пример адреса — name@example.org.", "An address looks like name@example.org."),
        ),
        (
            {"save": save, "type": "regex", "pattern": r"\d{6}"},
            _text("Почтовый индекс (6 цифр)?", "Postcode (6 digits)?"),
            _text("Индекс — это 6 цифр, например 443001.", "A postcode is 6 digits: 443001."),
        ),
        (
            {
                "save": save,
                "type": "one_of",
                "options": [
                    _text("Да", "Yes"),
                    _text("Нет", "No"),
                    _text("Не знаю", "I don't know"),
                ],
            },
            _text("Вам уже вручали повестку?", "Have you been served a summons yet?"),
            _text("Нажмите одну из кнопок.", "Please press one of the buttons."),
        ),
    ]
    return kinds[variant % len(kinds)]


def _flow(index: int, flows: int, steps: int) -> dict[str, Any]:
    fid = _flow_id(index)
    last = steps - 1

    def to(k: int, ahead: int) -> str:
        return _name(min(k + ahead, last))

    body: dict[str, Any] = {}
    body[_name(0)] = {
        "say": _prose(index, 2, _text("Как к вам обращаться?", "What should we call you?")),
        "input": {"save": "name", "type": "text", "min_length": 2, "max_length": 200},
        "invalid": _text("Напишите хотя бы имя.", "Please write at least your first name."),
        "goto": to(0, 1),
    }
    body[_name(1)] = {
        "say": _text("{name}, сколько вам полных лет?", "{name}, how old are you?"),
        "input": {"save": "age", "type": "integer", "min": 14, "max": 99},
        "invalid": _text("Напишите возраст числом.", "Please type your age as a number."),
        "goto": to(1, 1),
    }
    for k in range(2, last):
        role = (k - 2) % BLOCK
        block = (k - 2) // BLOCK
        seed = index * 31 + k
        topic_ru = _TOPICS["ru"][seed % len(_TOPICS["ru"])]
        topic_en = _TOPICS["en"][seed % len(_TOPICS["en"])]
        if role == 0:
            choices: list[dict[str, Any]] = [
                {
                    "label": _text(f"Да, про {topic_ru}", f"Yes, about the {topic_en}"),
                    "set": {f"c{k}": "yes"},
                    "goto": to(k, 1),
                },
                {"label": _text("Нет, дальше", "No, go on"), "goto": to(k, 2)},
            ]
            if index > 0 and block % 3 == 1 and flows > 2:
                other = 1 + (index % (flows - 1))  # another menu-side flow, never gen_00
                if other == index:
                    other = 1 + ((index + 1) % (flows - 1))
                target_block = (block + 1) % max(1, (steps - 3) // BLOCK)
                target = 2 + target_block * BLOCK
                if other != index and target < steps - 1:
                    choices.append(
                        {
                            "label": _text("Другая тема", "Another topic"),
                            "goto": f"{_flow_id(other)}.{_name(target)}",
                        }
                    )
            step: dict[str, Any] = {
                "say": _prose(
                    seed,
                    2,
                    _text(f"{{name}}, вопрос про {topic_ru}.", f"{{name}}, about the {topic_en}."),
                ),
                "choices": choices,
            }
        elif role == 1:
            step = {
                "say": _text(
                    f"Опишите своими словами: {topic_ru}.",
                    f"Describe it in your own words: {topic_en}.",
                ),
                "input": {"save": f"t{k}", "type": "text", "min_length": 2, "max_length": 500},
                "invalid": _text("Напишите чуть подробнее.", "Please write a little more."),
                "goto": to(k, 1),
            }
        elif role == 2:
            step = {
                "branch": [
                    {"when": "age >= 18 and len(name) >= 2", "goto": to(k, 1)},
                    {"goto": to(k, 2)},
                ]
            }
        elif role == 3:
            step = {
                "say": _prose(seed, 3, _text("{name}, важно:", "{name}, note:")),
                "goto": to(k, 1),
            }
        elif role == 4:
            step = {
                "say": _text(
                    "Дата, указанная в повестке (ДД.ММ.ГГГГ)?", "The date on it (DD.MM.YYYY)?"
                ),
                "input": {"save": f"d{k}", "type": "date"},
                "invalid": _text("Формат даты: ДД.ММ.ГГГГ.", "Date format: DD.MM.YYYY."),
                "goto": to(k, 1),
            }
        elif role == 5:
            day = f"d{k - 1}"
            step = {
                "branch": [
                    {"when": f"days_until({day}) > 30", "goto": to(k, 1)},
                    {"when": f"age({day}) >= 18 and age < 60", "goto": to(k, 2)},
                    {"goto": to(k, 1)},
                ]
            }
        elif role == 6:
            spec, question, invalid = _typed_input(k, block + index)
            day = f"d{k - 2}"
            step = {
                "say": {lang: f"({{{day}}}) {question[lang]}" for lang in _LANGS},
                "input": spec,
                "invalid": invalid,
                "goto": to(k, 1),
            }
        elif role == 7:
            if index == 0:
                step = {"say": _prose(seed, 1), "goto": to(k, 1)}
            else:
                step = {"call": _flow_id(0), "goto": to(k, 1)}
        elif role == 8:
            step = {
                "say": _text("{name}, передать вопрос юристу?", "{name}, pass this to a lawyer?"),
                "choices": [
                    {"label": _text("Да, юристу", "Yes, a lawyer"), "goto": to(k, 1)},
                    {"label": _text("Нет, продолжим", "No, go on"), "goto": to(k, 2)},
                ],
            }
        else:
            step = {
                "handover": {
                    "queue": "lawyers",
                    "say": _prose(seed, 1, _text("Передаём юристу.", "Passing you to a lawyer.")),
                }
            }
        body[_name(k)] = step
    body[_name(last)] = {
        "say": _text(
            "{name}, это всё. /start — в меню.", "{name}, that's all. /start for the menu."
        ),
        "end": True,
    }
    title_ru = f"Тема {index}: {_TOPICS['ru'][index % len(_TOPICS['ru'])]}"
    title_en = f"Topic {index}: {_TOPICS['en'][index % len(_TOPICS['en'])]}"
    document: dict[str, Any] = {
        "flow": fid,
        "title": _text(title_ru, title_en),
        "description": f"Generated for the load benchmark: {steps} steps.",
    }
    if index > 0:
        document["match"] = {
            "ru": [f"тема{index}", f"вопрос номер{index}", f"раздел{index} помощь"],
            "en": [f"topic{index}", f"question number{index}", f"section{index} help"],
        }
    document["steps"] = body
    return document


def _bot(flows: int) -> dict[str, Any]:
    return {
        "languages": list(_LANGS),
        "menu": {
            "say": _prose(0, 2, _text("Здравствуйте! Выберите тему.", "Hello! Pick a topic.")),
            "flows": [_flow_id(i) for i in range(1, min(flows, 7))],
        },
        "texts": {
            "not_understood": _text("Я не понял вопрос.", "I did not understand."),
        },
        "handover": {"lawyers": _text("Юристы", "Lawyers")},
        "retention_days": 30,
    }


_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)


def generate(folder: str | Path, flows: int = 20, steps: int = 100) -> int:
    """Write bot.yaml and `flows` flow files of `steps` steps into `folder`; the total
    number of steps. `flows` >= 2 (gen_00 is the called sub-flow), `steps` >= 4."""
    if flows < 2 or steps < 4:
        raise ValueError("need at least 2 flows of 4 steps")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bot.yaml").write_text(_dump(_bot(flows)), encoding="utf-8")
    for index in range(flows):
        path = folder / f"{_flow_id(index)}.yaml"
        path.write_text(_dump(_flow(index, flows, steps)), encoding="utf-8")
    return flows * steps


def folder_bytes(folder: str | Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).glob("*.yaml"))
