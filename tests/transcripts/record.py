"""Record the transcripts of flows/ again, from the scenarios below.

    python tests/transcripts/record.py            # rewrite tests/transcripts/<flow>_<lang>_*.yaml
    hotline replay tests/transcripts --coverage --min-coverage 100

Each scenario is what a person types after /start, exactly as in `hotline chat`: a number
presses that button of the latest message, anything else is typed text (a dict gives the
text per language). The conversation runs through the console chat with `--record`'s
recorder, on a clock fixed at NOW, once in Russian and once in English. Then each `bot:`
line is trimmed to a phrase that names the message (its first sentence, skipping the
"this is an illustration" line) so that a lawyer's rewording of the rest of a message does
not break every transcript; `buttons:` stay in full. Review the diff after recording: a
flow that changed can silently send a scenario down another path.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from adapters.console.chat import ConsoleChat  # noqa: E402
from engine.conversation import SendDocument  # noqa: E402
from engine.documents import document_text  # noqa: E402
from engine.loader import load_folder  # noqa: E402
from engine.runtime import Engine  # noqa: E402
from engine.transcripts.recording import FlowList, Recorder  # noqa: E402

NOW = dt.datetime(2026, 3, 1, 10, 0)
LANGUAGES = ("ru", "en")
HERE = Path(__file__).resolve().parent

Typed = str | dict[str, str]


@dataclass(frozen=True)
class Scenario:
    flow: str
    what: str
    title: dict[str, str]
    inputs: tuple[Typed, ...]
    contains: tuple[Typed, ...]  # what the scenario's document must carry


def s(flow: str, what: str, ru: str, en: str, *inputs: Typed, contains: tuple = ()) -> Scenario:
    return Scenario(flow, what, {"ru": ru, "en": en}, inputs, contains)


# What people type, reused across scenarios.
NAME = {"ru": "Иванов Иван Иванович", "en": "Ivanov Ivan Ivanovich"}
SHORT_NAME = {"ru": "Иван", "en": "Ivan"}
ADDRESS = {
    "ru": "443001, г. Самара, ул. Ленина, д. 1, кв. 2",
    "en": "443001 Samara, 1 Lenin Street, flat 2",
}
COMMISSARIAT = {
    "ru": "Военный комиссариат Ленинского района г. Самары",
    "en": "Military Commissariat of the Leninsky District of Samara",
}
REASONS = {
    "ru": "Я верующий христианин с 2019 года. Моя вера не позволяет мне брать в руки оружие "
    "и учиться убивать людей. Я работаю волонтёром в хосписе и хочу служить обществу "
    "мирным трудом.",
    "en": "I have been a practising Christian since 2019. My faith does not allow me to take "
    "up arms or to learn to kill people. I volunteer at a hospice and want to serve "
    "society through peaceful work.",
}
RELATIVE = {"ru": "Петров Алексей Сергеевич", "en": "Petrov Alexei Sergeyevich"}
MOTHER = {"ru": "Петрова Мария Ивановна", "en": "Petrova Maria Ivanovna"}
PHONE = "+7 900 123-45-67"
EMAIL = "ivan.ivanov@example.org"
LAWYER_MESSAGE = {
    "ru": "Здравствуйте, мне нужно успеть до пятницы.",
    "en": "Hello, I need to sort this out by Friday.",
}

# The bundled menu: 1 summons, 2 acs_application, 3 mobilization, 4 contract_soldier,
# 5 detained_relative, 6 lawyer. A lawyer's urgency question: 1 urgent, 2 not urgent.
SCENARIOS = [
    # ------------------------------------------------------------------ summons
    s(
        "summons",
        "conscript_acs",
        "Призывник с повесткой узнаёт про АГС и что взять в военкомат",
        "A conscript with a summons learns about ACS and what to bring",
        "1",  # I received a summons
        "1",  # for conscription
        "1",  # against my beliefs
        "2",  # what to bring
        "3",  # thanks, that's clear
    ),
    s(
        "summons",
        "typed_question",
        "Вопрос своими словами: не знает, что за повестка, идёт к заявлению на АГС",
        "A question in his own words: an unclear summons, then on to the ACS application",
        {"ru": "мне пришла повестка, что делать?", "en": "I got a summons, what do I do?"},
        "4",  # I don't know
        "2",  # medical exam or dispatch
        "2",  # health, studies, family
        "1",  # what to bring
        "1",  # I want ACS
    ),
    s(
        "summons",
        "clarify_data",
        "Повестка для уточнения данных: что будет, если не прийти",
        "A summons to clarify data: what if he does not go",
        "1",
        "3",  # to clarify my data
        {"ru": "а это опасно?", "en": "is it dangerous?"},  # matches no button
        "1",  # what if I don't go
        "3",  # thanks
        "/start",
        "1",
        "4",  # I don't know
        "1",  # clarify data
        "4",  # thanks
    ),
    s(
        "summons",
        "unsure_lawyer",
        "Не может разобрать повестку и просит юриста",
        "Cannot make out the summons and asks for a lawyer",
        "1",
        "5",  # talk to a lawyer
        "/back",
        "4",  # I don't know
        "4",  # I can't tell
        "1",  # urgent
        LAWYER_MESSAGE,
        "/cancel",
    ),
    s(
        "summons",
        "mobilisation",
        "Повестка по мобилизации: переход в раздел о мобилизации",
        "A mobilisation summons leads on to the mobilisation section",
        "1",
        "2",  # for mobilisation
        "/back",
        "4",  # I don't know
        "3",  # mobilisation
        "1",  # what deferments exist
        "3",  # thanks
    ),
    s(
        "summons",
        "change_of_mind",
        "Призывник передумывает: юрист, документы, снова АГС",
        "A conscript changes his mind: a lawyer, documents, then ACS after all",
        "1",
        "1",  # conscription
        "4",  # lawyer
        "/back",
        "3",  # what to bring
        "2",  # lawyer
        "/back",
        "/back",
        "1",  # against my beliefs
        "3",  # lawyer
        "/back",
        "1",  # prepare an ACS application
    ),
    s(
        "summons",
        "deferment_and_data",
        "Отсрочка, потом повестка для уточнения данных и неявка",
        "A deferment, then a summons to clarify data and not going",
        "1",
        "1",  # conscription
        "2",  # health, studies, family
        "3",  # lawyer
        "/back",
        "2",  # I want ACS
        "/start",
        "1",
        "3",  # clarify my data
        "3",  # lawyer
        "/back",
        "1",  # what if I don't go
        "1",  # lawyer
        "/back",
        "2",  # I want ACS
        "/back",
        "/back",
        "2",  # I want ACS
    ),
    # ------------------------------------------------------------------ acs_application
    s(
        "acs_application",
        "spring",
        "Верующий призывник заполняет заявление на АГС к весеннему призыву",
        "A Christian conscript fills in the ACS application for the spring call-up",
        "2",  # I want alternative civilian service
        "1",  # start
        SHORT_NAME,  # too short
        NAME,
        "32.13.2005",  # not a date
        "05.03.2006",
        {"ru": "Самара", "en": "Samara"},  # too short
        ADDRESS,
        COMMISSARIAT,
        {"ru": "Я пацифист.", "en": "I am a pacifist."},  # too short
        REASONS,
        "1",  # spring
        "1",  # leave a phone number
        "12345",  # not a phone number
        PHONE,
        "1",  # add an e-mail
        "ivan@",  # not an e-mail
        EMAIL,
        "2",  # thanks, that's clear
        contains=(NAME, ADDRESS, COMMISSARIAT),
    ),
    s(
        "acs_application",
        "seventeen_autumn",
        "Семнадцатилетний пацифист узнаёт об АГС и подаёт к осеннему призыву",
        "A 17-year-old pacifist reads about ACS and applies for the autumn call-up",
        {
            "ru": "я пацифист, можно вместо армии альтернативную службу?",
            "en": "I am a pacifist, can I do alternative service instead of the army?",
        },
        "2",  # tell me about ACS first
        "1",  # start the application
        NAME,
        "10.10.2008",
        "1",  # yes, go on
        ADDRESS,
        COMMISSARIAT,
        REASONS,
        "2",  # autumn
        "2",  # no contact details
        "1",  # talk to a lawyer
        "2",  # not urgent
        contains=(NAME, COMMISSARIAT),
    ),
    s(
        "acs_application",
        "unknown_callup",
        "Не знает, когда призыв; исправляет дату и переключает язык",
        "Does not know his call-up; corrects his date of birth and switches language",
        "2",
        "1",
        NAME,
        "05.03.2006",
        "/back",
        "05.03.2004",
        ADDRESS,
        COMMISSARIAT,
        REASONS,
        "3",  # I don't know
        "1",  # leave a phone number
        PHONE,
        "2",  # no e-mail
        "/language",
        {"ru": "2", "en": "1"},  # the other language
        "2",  # thanks, that's clear
        contains=(NAME,),
    ),
    s(
        "acs_application",
        "dates",
        "Ошибка в дате рождения, потом возраст старше 30",
        "A mistyped date of birth, then someone over 30",
        "2",
        "1",
        NAME,
        "01.01.2015",  # younger than 16: a mistake
        "1",  # enter the date again
        "01.01.1990",
        "3",  # thank you
    ),
    s(
        "acs_application",
        "lawyer_paths",
        "Сомневается и несколько раз открывает разговор с юристом",
        "Unsure, he opens the way to a lawyer several times and goes back",
        {"ru": "альтернативная служба", "en": "alternative service"},
        "3",  # talk to a lawyer
        "/back",
        "2",  # tell me about ACS first
        "2",  # talk to a lawyer
        "/back",
        "1",  # start the application
        NAME,
        "01.06.2012",
        "2",  # talk to a lawyer
        "/back",
        "1",  # enter the date again
        "01.06.2009",  # 16: too young yet
        "2",  # talk to a lawyer
        "/back",
        "3",  # not now
    ),
    s(
        "acs_application",
        "over_30",
        "Мужчине больше 30: юрист или раздел о мобилизации",
        "A man over 30: a lawyer, or the mobilisation section",
        "2",
        "1",
        NAME,
        "15.08.1988",
        "2",  # talk to a lawyer
        "/back",
        "1",  # about mobilisation
        "3",  # I'm afraid of being mobilised
        "1",  # what deferments exist
        "3",  # thanks
    ),
    # ------------------------------------------------------------------ mobilization
    s(
        "mobilization",
        "already_mobilised",
        "Мобилизованный: отсрочка, убеждения, риски",
        "A mobilised man: deferment, beliefs, risks",
        "3",  # mobilisation
        "1",  # I have been mobilised
        "1",  # grounds for deferment
        "1",  # against my beliefs
        "2",  # what are the risks
        "2",  # thanks
    ),
    s(
        "mobilization",
        "summons_beliefs",
        "Жена боится, что мужа мобилизуют: у него повестка, а служба против его убеждений",
        "A wife fears her husband will be mobilised: he has a summons and objects to serving",
        {"ru": "мужа хотят мобилизовать", "en": "my husband is afraid he will be mobilised"},
        "2",  # I got a mobilisation summons
        "2",  # against my beliefs
        "3",  # thanks
    ),
    s(
        "mobilization",
        "afraid_lawyer",
        "Боится мобилизации, читает о рисках и ждёт юриста",
        "Afraid of mobilisation, reads about the risks and waits for a lawyer",
        "3",
        "3",  # I'm afraid of being mobilised
        "3",  # what are the risks
        "1",  # talk to a lawyer
        "2",  # not urgent
        LAWYER_MESSAGE,
        "/start",  # while handed over: leaves the queue
    ),
    s(
        "mobilization",
        "already_back_and_forth",
        "Мобилизованный листает ответы туда и обратно",
        "A mobilised man goes back and forth between the answers",
        "3",
        "4",  # talk to a lawyer
        "/back",
        "1",  # I have been mobilised
        "2",  # against my beliefs
        "1",  # talk to a lawyer
        "/back",
        "/back",
        "3",  # what if I leave
        "/back",
        "4",  # talk to a lawyer
        "1",  # urgent
    ),
    s(
        "mobilization",
        "summons_choices",
        "Получил повестку по мобилизации: риски, отсрочка",
        "Got a mobilisation summons: risks, deferment",
        "3",
        "2",  # I got a mobilisation summons
        "3",  # what are the risks
        "/back",
        "4",  # talk to a lawyer
        "/back",
        "1",  # what deferments exist
        "2",  # talk to a lawyer
        "/back",
        "3",  # thanks
    ),
    s(
        "mobilization",
        "afraid",
        "Боится мобилизации: отсрочки, убеждения, юрист",
        "Afraid of mobilisation: deferments, beliefs, a lawyer",
        "3",
        "3",  # I'm afraid of being mobilised
        "1",  # what deferments exist
        "/back",
        "2",  # against my beliefs
        "/back",
        "4",  # talk to a lawyer
        "1",  # urgent
    ),
    # ------------------------------------------------------------------ contract_soldier
    s(
        "contract_soldier",
        "contract_ended",
        "У контрактника истёк контракт: основания и рапорт",
        "A contract soldier whose contract has ended: grounds and the report",
        "4",  # contract soldier
        "1",  # my contract has ended
        "1",  # what grounds remain
        "1",  # how to file a report
        "2",  # thanks
    ),
    s(
        "contract_soldier",
        "thinking_of_leaving",
        "Думает оставить часть: сначала о рисках",
        "Thinking of leaving his unit: the risks first",
        {"ru": "хочу уйти из армии", "en": "I want to leave the army"},
        "4",  # I'm thinking of leaving my unit
        "2",  # grounds for dismissal
        "3",  # thanks
    ),
    s(
        "contract_soldier",
        "convictions",
        "Служба противоречит убеждениям: рапорт и юрист",
        "Service is against his beliefs: the report and a lawyer",
        "4",
        "3",  # against my beliefs
        "1",  # how to file a report
        "1",  # talk to a lawyer
        "2",  # not urgent
        LAWYER_MESSAGE,
        "/cancel",
    ),
    s(
        "contract_soldier",
        "lawyer_paths",
        "Контрактник ищет, как связаться с юристом",
        "A contract soldier looks for the way to a lawyer",
        "4",
        "5",  # talk to a lawyer
        "/back",
        "1",  # my contract has ended
        "2",  # how to file a report
        "/back",
        "3",  # talk to a lawyer
        "/back",
        "/back",
        "2",  # grounds for dismissal
        "2",  # talk to a lawyer
        "1",  # urgent
    ),
    s(
        "contract_soldier",
        "beliefs_then_leaving",
        "Убеждения, потом мысли оставить часть — и юрист",
        "Beliefs, then thoughts of leaving the unit, and a lawyer",
        "4",
        "3",  # against my beliefs
        "2",  # talk to a lawyer
        "/back",
        "/back",
        "4",  # I'm thinking of leaving my unit
        "1",  # talk to a lawyer
        "1",  # urgent
    ),
    # ------------------------------------------------------------------ detained_relative
    s(
        "detained_relative",
        "mother_son",
        "Мать: сына держат в подвале за отказ воевать",
        "A mother: her son is held in a basement for refusing to fight",
        {
            "ru": "моего сына держат в подвале за отказ воевать",
            "en": "my son is held in a basement for refusing to fight",
        },
        "1",  # start
        "3",  # brother (a slip of the finger)
        "/back",
        "1",  # son
        {"ru": "Петя", "en": "Pete"},  # too short
        RELATIVE,
        {"ru": "в мае 1999", "en": "May 1999"},  # not a date
        "14.05.1999",
        {"ru": "Луганская область, подвал комендатуры", "en": "Luhansk region, a basement"},
        "01.05.2026",  # in the future
        "20.02.2026",
        {"ru": "не знаю", "en": "don't know"},
        {"ru": "Держат", "en": "Held"},  # too short
        {
            "ru": "Сослуживец позвонил 21 февраля: сын отказался идти в бой, его заперли в "
            "подвале. Связи с ним нет.",
            "en": "A fellow soldier called on 21 February: my son refused to go into combat "
            "and was locked in a basement. We cannot reach him.",
        },
        MOTHER,
        "1",  # leave a phone number
        PHONE,
        "2",  # no e-mail
        "1",  # pass the case to a lawyer
        {"ru": "Пожалуйста, помогите как можно скорее.", "en": "Please help as soon as possible."},
        contains=(RELATIVE, MOTHER),
    ),
    s(
        "detained_relative",
        "wife_husband",
        "Жена: мужа удерживают, контактов не оставляет",
        "A wife: her husband is held; she leaves no contact details",
        "5",  # a relative is held
        "1",  # start
        "4",  # father (a slip)
        "/back",
        "2",  # husband
        {"ru": "Сидоров Павел Андреевич", "en": "Sidorov Pavel Andreyevich"},
        "03.11.1990",
        {"ru": "не знаю", "en": "don't know"},
        "10.01.2026",
        {"ru": "в/ч 12345", "en": "unit 12345"},
        {
            "ru": "Муж написал, что его держат за отказ ехать на передовую.",
            "en": "My husband wrote that he is held for refusing to go to the front.",
        },
        {"ru": "Сидорова Елена Петровна", "en": "Sidorova Elena Petrovna"},
        "2",  # no contact details
        "2",  # that's all for now
        contains=({"ru": "Сидоров Павел Андреевич", "en": "Sidorov Pavel Andreyevich"},),
    ),
    s(
        "detained_relative",
        "straight_to_lawyer",
        "Друг задержанного: сразу к юристу, потом удаляет переписку",
        "A friend of the man held: straight to a lawyer, then deletes everything",
        "5",
        "2",  # straight to a lawyer
        LAWYER_MESSAGE,
        "/cancel",
        "5",
        "1",  # start
        "5",  # other relative or friend
        "/forget",
    ),
    # ------------------------------------------------------------------ lawyer
    s(
        "lawyer",
        "command",
        "Команда /lawyer: срочный вопрос юристу",
        "The /lawyer command: an urgent question for a lawyer",
        "/lawyer",
        "1",  # urgent
        LAWYER_MESSAGE,
        "/help",
        "/cancel",
    ),
    s(
        "lawyer",
        "not_understood",
        "Непонятный вопрос, потом юрист из меню",
        "A question the bot does not understand, then a lawyer from the menu",
        {"ru": "здрасте", "en": "hi there"},
        "6",  # talk to a lawyer
        "2",  # not urgent
    ),
]


def trim(text: str) -> str:
    """A phrase that names the message: its first sentence, or the first 70 characters cut
    at a word. A flow's "(This is an illustration...)" line is kept with the sentence after
    it: every example flow must say it (DOMAIN.md), so the transcripts pin it."""
    lines = text.splitlines()
    if len(lines) > 1 and lines[0].startswith("(") and lines[0].endswith(")"):
        return f"{lines[0]}\n{_first_sentence(lines[1])}"
    if len(lines) == 1 and len(lines[0]) <= 80:
        return lines[0]
    return _first_sentence(lines[0]) if lines else text


def _first_sentence(line: str) -> str:
    end = re.search(r"[.?!:;](\s|$)", line[20:])
    if end is not None and 20 + end.start() + 1 <= 80:
        return line[: 20 + end.start() + 1]
    if len(line) <= 80:
        return line
    cut = line[:70]
    cut = cut[: cut.rfind(" ")] if " " in cut else cut
    return cut.rstrip(" ,;—-")


def record(scenario: Scenario, language: str, engine: Engine, scratch: Path) -> str:
    recorder = Recorder(NOW, language, title=scenario.title[language])
    chat = ConsoleChat(engine, io.StringIO(), language, recorder)
    chat.documents_dir = scratch
    typed = [item[language] if isinstance(item, dict) else item for item in scenario.inputs]
    documents: list[bytes] = []
    for text in ["/start", *typed]:
        actions = chat.send(text)
        documents.extend(a.data for a in actions if isinstance(a, SendDocument))
    for step in recorder.steps:
        if "bot" in step and not step["bot"].startswith("/^"):
            step["bot"] = trim(step["bot"])
        elif "document" in step:
            # Pin what the person typed that the document must carry (names, places).
            text = document_text(documents.pop(0))
            wanted = [c[language] if isinstance(c, dict) else c for c in scenario.contains]
            missing = [w for w in wanted if w not in text]
            if missing:
                raise SystemExit(f"{scenario.flow} {scenario.what} {language}: no {missing}")
            if wanted:
                step["contains"] = FlowList(wanted)
    return recorder.to_yaml()


def main() -> int:
    flows, report = load_folder(ROOT / "flows")
    if flows is None:
        for diagnostic in report.sorted():
            print(diagnostic, file=sys.stderr)
        return 1
    engine = Engine(flows, clock=lambda: NOW)
    with tempfile.TemporaryDirectory() as scratch:
        for scenario in SCENARIOS:
            for language in LANGUAGES:
                path = HERE / f"{scenario.flow}_{language}_{scenario.what}.yaml"
                text = record(scenario, language, engine, Path(scratch))
                path.write_text(text, encoding="utf-8")
    print(f"recorded {len(SCENARIOS) * len(LANGUAGES)} transcripts in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
