"""Build the example document templates in flows/templates/ with python-docx.

    python tools/make_templates.py              # writes flows/templates/*.docx
    python tools/make_templates.py --out DIR    # somewhere else

The .docx files are committed too: they are what the bot fills in, and lawyers open and
edit them in Word. This script is only the first draft of them. Once a lawyer has edited a
template in Word, change it in Word from then on, not here (running the script again would
overwrite their edits).

The placeholders are docxtpl's Jinja (see engine/documents.py for what a template can use):
`{{ full_name }}` prints a saved answer, `{{ birth_date|date }}` a date in the person's
language, `{%p if ... %}` on a paragraph of its own keeps or drops the paragraphs up to the
matching `{%p endif %}`. Each placeholder is written as one run, so docxtpl sees it whole.

Variables: the ACS application reads full_name, birth_date, address, commissariat, reasons
and callup (flows/acs_application.yaml); the complaint reads applicant_name, relation,
relative_name, relative_birth, unit, where_held, held_since and circumstances
(flows/detained_relative.yaml).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor

ROOT = Path(__file__).resolve().parent.parent
GREY = RGBColor(0x59, 0x59, 0x59)
LINE = "______________________________"


@dataclass(frozen=True)
class Look:
    font: str
    size: int  # points


RU = Look("Times New Roman", 12)
EN = Look("Times New Roman", 12)


class Writer:
    """A Word document in the house style of Russian official letters: A4, 3 cm left
    margin, justified text with a 1.25 cm first-line indent, address block on the right."""

    def __init__(self, look: Look, title: str, language: str) -> None:
        self.doc = Document()
        self.look = look
        section = self.doc.sections[0]
        section.page_height, section.page_width = Cm(29.7), Cm(21.0)
        section.top_margin = section.bottom_margin = Cm(2)
        section.left_margin, section.right_margin = Cm(3), Cm(1.5)
        normal = self.doc.styles["Normal"]
        normal.font.name = look.font
        normal.font.size = Pt(look.size)
        fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
        for attribute in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
            fonts.set(qn(attribute), look.font)
        lang = OxmlElement("w:lang")
        lang.set(qn("w:val"), {"ru": "ru-RU", "en": "en-GB"}[language])
        normal.element.get_or_add_rPr().append(lang)
        normal.paragraph_format.space_after = Pt(0)
        normal.paragraph_format.line_spacing = 1.0
        props = self.doc.core_properties
        props.title = title
        props.author = "hotline"
        props.last_modified_by = "hotline"
        props.comments = "Illustration, to be reviewed by the organisation's lawyers."
        props.language = {"ru": "ru-RU", "en": "en-GB"}[language]

    # ------------------------------------------------------------------ blocks

    def note(self, text: str) -> None:
        """A small grey line for the reader, not part of the letter."""
        p = self.doc.add_paragraph()
        p.paragraph_format.space_after = Pt(12)
        run = p.add_run(text)
        run.italic = True
        run.font.size = Pt(self.look.size - 3)
        run.font.color.rgb = GREY

    def addressee(self, lines: list[str]) -> None:
        for index, line in enumerate(lines):
            p = self.doc.add_paragraph()
            p.paragraph_format.left_indent = Cm(8.5)
            if index == len(lines) - 1:
                p.paragraph_format.space_after = Pt(24)
            p.add_run(line)

    def title(self, title: str, subtitle: str) -> None:
        p = self.doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        run = p.add_run(title)
        run.bold = True
        p = self.doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        p.paragraph_format.space_after = Pt(18)
        p.add_run(subtitle).bold = True

    def text(self, *parts: str, bold: bool = False, indent: bool = True, after: int = 6) -> None:
        """A justified paragraph; `parts` become runs (never split a placeholder)."""
        p = self.doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        if indent:
            p.paragraph_format.first_line_indent = Cm(1.25)
        p.paragraph_format.space_after = Pt(after)
        for part in parts:
            p.add_run(part).bold = bold

    def heading(self, text: str) -> None:
        p = self.doc.add_paragraph()
        p.paragraph_format.space_before = Pt(6)
        p.paragraph_format.space_after = Pt(6)
        p.paragraph_format.keep_with_next = True
        p.add_run(text).bold = True

    def items(self, items: list[str], after: int = 6, keep: bool = False) -> None:
        """A numbered list written out as "1. ..." (Word's automatic numbering is fragile
        when docxtpl drops paragraphs). `keep`: stay on one page with what follows."""
        for number, item in enumerate(items, 1):
            p = self.doc.add_paragraph()
            p.paragraph_format.keep_with_next = keep
            p.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
            p.paragraph_format.left_indent = Cm(1.25)
            p.paragraph_format.first_line_indent = Cm(-0.6)
            if number == len(items):
                p.paragraph_format.space_after = Pt(after)
            p.add_run(f"{number}. {item}")

    def control(self, tag: str) -> None:
        """A docxtpl `{%p ... %}` paragraph: it disappears from the filled document."""
        self.doc.add_paragraph().add_run(tag)

    def facts(self, rows: list[tuple[str, str]]) -> None:
        table = self.doc.add_table(rows=0, cols=2)
        table.style = self.doc.styles["Table Grid"]
        table.alignment = WD_TABLE_ALIGNMENT.CENTER
        for label, value in rows:
            cells = table.add_row().cells
            cells[0].paragraphs[0].add_run(label)
            cells[1].paragraphs[0].add_run(value)
        _widths(table, [Cm(5.5), Cm(11)])
        self.doc.add_paragraph().paragraph_format.space_after = Pt(0)

    def signature(self, date: str, sign: str, caption: str) -> None:
        """Date on the left; signature line, name and "(signature)" on the right."""
        self.doc.add_paragraph().paragraph_format.keep_with_next = True
        table = self.doc.add_table(rows=2, cols=2)
        table.alignment = WD_TABLE_ALIGNMENT.CENTER
        table.cell(0, 0).paragraphs[0].add_run(date)
        right = table.cell(0, 1).paragraphs[0]
        right.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        right.add_run(sign)
        below = table.cell(1, 1).paragraphs[0]
        below.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        run = below.add_run(caption)
        run.font.size = Pt(self.look.size - 3)
        run.font.color.rgb = GREY
        _widths(table, [Cm(4.5), Cm(12)])
        for row in table.rows:  # the signature block never breaks across pages
            row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))
        for cell in table.rows[0].cells:
            cell.paragraphs[0].paragraph_format.keep_with_next = True

    def memo(self, title: str) -> None:
        """A new page for the person's notes, which is not part of the letter."""
        self.doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        p = self.doc.add_paragraph()
        p.paragraph_format.space_after = Pt(12)
        run = p.add_run(title)
        run.bold = True
        run.font.color.rgb = GREY

    def grey(self, *parts: str) -> None:
        p = self.doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        p.paragraph_format.space_after = Pt(6)
        for part in parts:
            run = p.add_run(part)
            run.font.size = Pt(self.look.size - 1)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.doc.save(str(path))


def _widths(table: object, widths: list[object]) -> None:
    """Fixed column widths that both Word (cell widths) and LibreOffice (grid) obey."""
    table.autofit = False  # type: ignore[attr-defined]
    for index, width in enumerate(widths):
        table.columns[index].width = width  # type: ignore[attr-defined]
        for cell in table.columns[index].cells:  # type: ignore[attr-defined]
            cell.width = width


# --------------------------------------------------------------------------- ACS application


def acs_application_ru() -> Writer:
    w = Writer(RU, "Заявление о замене военной службы альтернативной гражданской службой", "ru")
    w.note(
        "Образец для иллюстрации: текст должны проверить юристы организации; это не "
        "юридическая консультация. Эту строку перед печатью удалите. Последняя страница — "
        "памятка для вас, она не часть заявления."
    )
    w.addressee(
        [
            "Военному комиссару",
            "{{ commissariat }}",
            "Заявитель: {{ full_name }}",
            "дата рождения: {{ birth_date|date }}",
            "адрес регистрации: {{ address }}",
        ]
    )
    w.title(
        "ЗАЯВЛЕНИЕ",
        "о замене военной службы по призыву альтернативной гражданской службой",
    )
    w.text(
        "Я, {{ full_name }}, {{ birth_date|date }} года рождения, состою на воинском учёте "
        "в указанном выше военном комиссариате и подлежу призыву на военную службу."
    )
    w.text(
        "Несение военной службы противоречит моим убеждениям (вероисповеданию). "
        "В соответствии с частью 3 статьи 59 Конституции Российской Федерации, статьями 2 и 11 "
        "Федерального закона от 25.07.2002 № 113-ФЗ «Об альтернативной гражданской службе» "
        "прошу заменить мне военную службу по призыву альтернативной гражданской службой."
    )
    w.text(
        "Причины и обстоятельства, побудившие меня ходатайствовать о замене военной службы "
        "по призыву альтернативной гражданской службой:"
    )
    w.text("{{ reasons }}")
    w.text(
        "Прошу рассмотреть моё заявление на заседании призывной комиссии в моём присутствии "
        "(статья 12 Федерального закона № 113-ФЗ) и заблаговременно сообщить мне дату, время "
        "и место заседания."
    )
    w.text(
        "Лица, которые согласны подтвердить достоверность моих доводов (фамилия, имя, "
        "отчество, как с ними связаться; заполняется при наличии):",
        after=0,
    )
    w.items([LINE * 2, LINE * 2])
    w.heading("Приложения:")
    w.items(
        [
            "Автобиография.",
            "Характеристика с места работы и (или) учёбы.",
            LINE + " (другие документы — при наличии).",
        ],
        keep=True,
    )
    w.signature("{{ today|longdate }}", "__________________ / {{ full_name }}", "(подпись)        ")
    w.memo("ПАМЯТКА — не часть заявления, эту страницу не подавайте")
    w.grey(
        "Это образец для иллюстрации: его должны проверить юристы организации. Это не "
        "юридическая консультация. Прочитайте заявление целиком и исправьте всё, что "
        "написано не так, как вы сказали бы сами."
    )
    w.control("{%p if acs_deadline(callup) %}")
    w.grey(
        "Срок подачи. Для ",
        "{% if callup == 'spring' %}весеннего (апрель–июль){% else %}осеннего "
        "(октябрь–декабрь){% endif %}",
        " призыва ",
        "{{ acs_callup_year(callup) }}",
        " года заявление подают до ",
        "{{ acs_deadline(callup)|longdate }}",
        " (статья 11 Федерального закона № 113-ФЗ). Если вас могут призвать раньше, срок для "
        "того призыва уже прошёл: всё равно подайте заявление как можно скорее — поздно "
        "поданное заявление обязаны рассмотреть, а отказ можно обжаловать в суде.",
    )
    w.control("{%p else %}")
    w.grey(
        "Сроки подачи: до ",
        "{{ acs_deadline('autumn')|longdate }}",
        " — если вас должны призвать в октябре–декабре ",
        "{{ acs_callup_year('autumn') }}",
        " года; до ",
        "{{ acs_deadline('spring')|longdate }}",
        " — если в апреле–июле ",
        "{{ acs_callup_year('spring') }}",
        " года (статья 11 Федерального закона № 113-ФЗ). Если не уверены, подавайте как можно "
        "раньше: поздно поданное заявление всё равно обязаны рассмотреть.",
    )
    w.control("{%p endif %}")
    w.grey(
        "Как подать. Лично в военный комиссариат, где вы состоите на воинском учёте: возьмите "
        "два экземпляра и попросите поставить на вашем отметку о принятии (дата, подпись, "
        "должность). Или заказным письмом с описью вложения и уведомлением о вручении. "
        "Сохраните копии, опись и квитанции."
    )
    w.grey(
        "Приложите автобиографию и характеристику с места работы или учёбы (если работаете "
        "или учитесь). Можно приложить другие документы и указать людей, готовых подтвердить "
        "ваши убеждения."
    )
    w.grey(
        "Призывная комиссия рассматривает заявление в течение месяца после окончания срока "
        "подачи (до 1 мая, если срок был 1 апреля; до 1 ноября, если 1 октября). Приходите на "
        "заседание лично, с паспортом и копией заявления с отметкой о принятии."
    )
    w.grey(
        "Если заявление не принимают, отказывают или не отвечают — напишите юристу в боте "
        "(/lawyer): отказ можно обжаловать в суде."
    )
    return w


def acs_application_en() -> Writer:
    w = Writer(
        EN, "Application to replace military service with alternative civilian service", "en"
    )
    w.note(
        "An illustration, to be reviewed by the organisation's lawyers; not legal advice. "
        "Delete this line before printing. The last page is a note for you, not part of the "
        "application."
    )
    w.addressee(
        [
            "To the Military Commissar",
            "{{ commissariat }}",
            "Applicant: {{ full_name }}",
            "date of birth: {{ birth_date|date }}",
            "registered address: {{ address }}",
        ]
    )
    w.title(
        "APPLICATION",
        "to replace military service by conscription with alternative civilian service",
    )
    w.text(
        "I, {{ full_name }}, born {{ birth_date|date }}, am registered for military service "
        "at the above military commissariat and am subject to conscription."
    )
    w.text(
        "Military service contradicts my beliefs (religion). Under Article 59(3) of the "
        "Constitution of the Russian Federation and Articles 2 and 11 of Federal Law No. 113-FZ "
        'of 25 July 2002 "On Alternative Civilian Service", I request that my military service '
        "by conscription be replaced with alternative civilian service."
    )
    w.text(
        "The reasons and circumstances that lead me to request the replacement of military "
        "service by conscription with alternative civilian service:"
    )
    w.text("{{ reasons }}")
    w.text(
        "I request that my application be considered at a meeting of the draft commission in "
        "my presence (Article 12 of Federal Law No. 113-FZ) and that I be informed in good time "
        "of the date, time and place of the meeting."
    )
    w.text(
        "People who agree to confirm the truth of my statements (full name and how to reach "
        "them; if any):",
        after=0,
    )
    w.items([LINE * 2, LINE * 2])
    w.heading("Attachments:")
    w.items(
        [
            "Autobiography.",
            "Character reference from my place of work and/or study.",
            LINE + " (other documents, if any).",
        ],
        keep=True,
    )
    w.signature(
        "{{ today|longdate }}", "__________________ / {{ full_name }}", "(signature)        "
    )
    w.memo("NOTE — not part of the application; do not file this page")
    w.grey(
        "This is an illustration, to be reviewed by the organisation's lawyers. It is not legal "
        "advice. Read the whole application and correct anything that is not how you would "
        "say it yourself."
    )
    w.grey(
        "Language. Russian authorities work in Russian, so the application you file must be "
        "in Russian. This English version is for understanding what it says. For the Russian "
        "one, switch the bot to Russian (/language ru) and answer the questions again in "
        "Russian, or ask a lawyer (/lawyer)."
    )
    w.control("{%p if acs_deadline(callup) %}")
    w.grey(
        "Deadline. For the ",
        "{% if callup == 'spring' %}spring (April–July){% else %}autumn "
        "(October–December){% endif %}",
        " call-up of ",
        "{{ acs_callup_year(callup) }}",
        ", the application is filed before ",
        "{{ acs_deadline(callup)|longdate }}",
        " (Article 11 of Federal Law No. 113-FZ). If you may be called up earlier than that, "
        "the deadline for that call-up has passed: file anyway, as soon as you can — a late "
        "application must still be considered, and a refusal can be appealed in court.",
    )
    w.control("{%p else %}")
    w.grey(
        "Deadlines: before ",
        "{{ acs_deadline('autumn')|longdate }}",
        " if you are to be called up in October–December ",
        "{{ acs_callup_year('autumn') }}",
        "; before ",
        "{{ acs_deadline('spring')|longdate }}",
        " if in April–July ",
        "{{ acs_callup_year('spring') }}",
        " (Article 11 of Federal Law No. 113-FZ). If unsure, file as early as you can: a late "
        "application must still be considered.",
    )
    w.control("{%p endif %}")
    w.grey(
        "How to file. In person at the military commissariat where you are registered: bring "
        "two copies and ask for yours to be marked as received (date, signature, position). "
        "Or by registered post with a list of contents and a delivery receipt. Keep the "
        "copies, the list and the receipts."
    )
    w.grey(
        "Attach an autobiography and a character reference from your place of work or study "
        "(if you work or study). You may add other documents and name people willing to "
        "confirm your beliefs."
    )
    w.grey(
        "The draft commission considers the application within a month after the filing "
        "deadline (by 1 May if the deadline was 1 April; by 1 November if it was 1 October). "
        "Attend the meeting in person, with your passport and your marked copy."
    )
    w.grey(
        "If they refuse to accept it, turn it down or do not answer, write to a lawyer in the "
        "bot (/lawyer): a refusal can be appealed in court."
    )
    return w


# --------------------------------------------------------------------------- complaint

RELATION_RU = (
    "{% if relation == 'son' %}моего сына{% elif relation == 'husband' %}моего мужа"
    "{% elif relation == 'brother' %}моего брата{% elif relation == 'father' %}моего отца"
    "{% else %}близкого мне человека{% endif %}"
)
RELATION_EN = (
    "{% if relation == 'son' %}my son{% elif relation == 'husband' %}my husband"
    "{% elif relation == 'brother' %}my brother{% elif relation == 'father' %}my father"
    "{% else %}a person close to me{% endif %}"
)


def prosecutor_complaint_ru() -> Writer:
    w = Writer(RU, "Жалоба военному прокурору", "ru")
    w.note(
        "Образец для иллюстрации: текст должны проверить юристы организации; это не "
        "юридическая консультация. Эту строку перед печатью удалите. Последняя страница — "
        "памятка для вас, она не часть жалобы."
    )
    w.addressee(
        [
            "Военному прокурору",
            "____________________ гарнизона",
            "Копия: в Главную военную прокуратуру",
            "Заявитель: {{ applicant_name }}",
            "почтовый адрес (e-mail) для ответа:",
            LINE,
            LINE,
        ]
    )
    w.title("ЖАЛОБА", "на незаконное лишение свободы военнослужащего без решения суда")
    w.text(
        "Я, {{ applicant_name }}, обращаюсь в защиту ",
        RELATION_RU,
        " — военнослужащего, который удерживается без решения суда.",
    )
    w.text("Что мне о нём известно:", after=4)
    w.facts(
        [
            ("Фамилия, имя, отчество", "{{ relative_name }}"),
            ("Дата рождения", "{{ relative_birth|date }}"),
            ("Воинская часть", "{{ unit }}"),
            ("Где удерживается", "{{ where_held }}"),
            ("Удерживается с", "{{ held_since|date }}"),
        ]
    )
    w.text("Обстоятельства:", after=0)
    w.text("{{ circumstances }}")
    w.text(
        "Насколько мне известно, решения суда о его аресте или заключении под стражу не "
        "выносилось. Согласно статье 22 Конституции Российской Федерации каждый имеет право на "
        "свободу и личную неприкосновенность; арест, заключение под стражу и содержание под "
        "стражей допускаются только по судебному решению, а до судебного решения лицо не может "
        "быть задержано на срок более 48 часов. Удержание военнослужащего без решения суда "
        "нарушает эти гарантии и содержит признаки преступлений, предусмотренных статьями 127 "
        "(незаконное лишение свободы) и 286 (превышение должностных полномочий) Уголовного "
        "кодекса Российской Федерации."
    )
    w.text(
        "На основании изложенного, руководствуясь статьями 10 и 27 Федерального закона "
        "от 17.01.1992 № 2202-1 «О прокуратуре Российской Федерации»,",
        after=6,
    )
    w.heading("ПРОШУ:")
    w.items(
        [
            "Провести проверку законности лишения свободы военнослужащего ({{ relative_name }}), "
            "установить, где и по чьему распоряжению он содержится.",
            "Если он удерживается без решения суда — незамедлительно освободить его.",
            "Привлечь виновных должностных лиц к установленной законом ответственности, а "
            "материалы проверки направить в военный следственный орган Следственного комитета "
            "Российской Федерации для решения вопроса о возбуждении уголовного дела.",
            "О результатах рассмотрения жалобы сообщить мне в письменной форме по указанному "
            "выше адресу.",
        ]
    )
    w.signature(
        "{{ today|longdate }}", "__________________ / {{ applicant_name }}", "(подпись)        "
    )
    w.memo("ПАМЯТКА — не часть жалобы, эту страницу не подавайте")
    w.grey(
        "Это образец для иллюстрации: его должны проверить юристы организации. Это не "
        "юридическая консультация. Прочитайте жалобу целиком и исправьте всё, что написано "
        "неточно; пишите только то, что знаете."
    )
    w.grey(
        "Куда направить. В военную прокуратуру гарнизона, на территории которого находится "
        "воинская часть (впишите её в начало жалобы), копию — в Главную военную прокуратуру. "
        "Если не знаете, какой это гарнизон, юрист поможет определить."
    )
    w.grey(
        "Обязательно впишите почтовый адрес или адрес электронной почты для ответа: без него "
        "на обращение вправе не отвечать (статья 11 Федерального закона от 02.05.2006 № 59-ФЗ "
        "«О порядке рассмотрения обращений граждан Российской Федерации»). Ответить должны в "
        "течение 30 дней со дня регистрации (статья 12 того же закона)."
    )
    w.grey(
        "Как подать. Лично в приёмную прокуратуры — попросите отметку о принятии на вашем "
        "экземпляре; заказным письмом с описью вложения и уведомлением о вручении; или через "
        "интернет-приёмную прокуратуры. Сохраните копии и квитанции."
    )
    w.grey(
        "Вместе с жалобой помогает огласка — обращения в СМИ и правозащитные организации. Что и "
        "когда предавать огласке, решите вместе с юристом, чтобы не навредить. Напишите юристу "
        "в боте: /lawyer."
    )
    return w


def prosecutor_complaint_en() -> Writer:
    w = Writer(EN, "Complaint to the military prosecutor", "en")
    w.note(
        "An illustration, to be reviewed by the organisation's lawyers; not legal advice. "
        "Delete this line before printing. The last page is a note for you, not part of the "
        "complaint."
    )
    w.addressee(
        [
            "To the Military Prosecutor",
            "of the __________________ Garrison",
            "Copy: the Main Military Prosecutor's Office",
            "Applicant: {{ applicant_name }}",
            "postal (e-mail) address for the reply:",
            LINE,
            LINE,
        ]
    )
    w.title("COMPLAINT", "about the unlawful detention of a serviceman without a court decision")
    w.text(
        "I, {{ applicant_name }}, am writing on behalf of ",
        RELATION_EN,
        ", a serviceman who is being held without a court decision.",
    )
    w.text("What I know about him:", after=4)
    w.facts(
        [
            ("Full name", "{{ relative_name }}"),
            ("Date of birth", "{{ relative_birth|date }}"),
            ("Military unit", "{{ unit }}"),
            ("Where he is held", "{{ where_held }}"),
            ("Held since", "{{ held_since|date }}"),
        ]
    )
    w.text("Circumstances:", after=0)
    w.text("{{ circumstances }}")
    w.text(
        "As far as I know, no court has ordered his arrest or detention. Under Article 22 of the "
        "Constitution of the Russian Federation everyone has the right to liberty and security "
        "of person; arrest, taking into custody and keeping in custody are allowed only by a "
        "court decision, and without one a person may not be detained for more than 48 hours. "
        "Holding a serviceman without a court decision breaches these guarantees and bears the "
        "marks of the crimes under Articles 127 (unlawful deprivation of liberty) and 286 "
        "(abuse of authority) of the Criminal Code of the Russian Federation."
    )
    w.text(
        "In view of the above, and under Articles 10 and 27 of Federal Law No. 2202-1 of "
        '17 January 1992 "On the Prosecutor\'s Office of the Russian Federation",',
        after=6,
    )
    w.heading("I REQUEST:")
    w.items(
        [
            "That the lawfulness of the detention of {{ relative_name }} be checked, and that "
            "it be established where he is held and on whose orders.",
            "That he be released at once if he is held without a court decision.",
            "That the officials responsible be held liable as the law provides, and the "
            "material of the check be sent to the military investigative body of the "
            "Investigative Committee of the Russian Federation to decide on opening a "
            "criminal case.",
            "That I be informed in writing of the outcome, at the address above.",
        ]
    )
    w.signature(
        "{{ today|longdate }}", "__________________ / {{ applicant_name }}", "(signature)        "
    )
    w.memo("NOTE — not part of the complaint; do not file this page")
    w.grey(
        "This is an illustration, to be reviewed by the organisation's lawyers. It is not legal "
        "advice. Read the whole complaint and correct anything inaccurate; write only what you "
        "know."
    )
    w.grey(
        "Language. Russian authorities work in Russian, so the complaint you file must be in "
        "Russian. This English version is for understanding what it says. For the Russian "
        "one, switch the bot to Russian (/language ru) and answer the questions again, or ask "
        "a lawyer (/lawyer)."
    )
    w.grey(
        "Where to send it. To the military prosecutor's office of the garrison where the unit "
        "is stationed (write it at the top), with a copy to the Main Military Prosecutor's "
        "Office. If you do not know the garrison, a lawyer can help find it."
    )
    w.grey(
        "Be sure to write a postal or e-mail address for the reply: without one, the complaint "
        "need not be answered (Article 11 of Federal Law No. 59-FZ of 2 May 2006 on the "
        "consideration of citizens' appeals). The answer is due within 30 days of registration "
        "(Article 12 of the same law)."
    )
    w.grey(
        "How to file. In person at the prosecutor's reception office — ask for your copy to be "
        "marked as received; by registered post with a list of contents and a delivery "
        "receipt; or through the prosecutor's office online reception. Keep the copies and "
        "receipts."
    )
    w.grey(
        "Public attention — the media, human-rights groups — helps alongside the complaint. "
        "Decide what to make public, and when, together with a lawyer, so as not to cause "
        "harm. Write to a lawyer in the bot: /lawyer."
    )
    return w


TEMPLATES = {
    "acs_application_ru.docx": acs_application_ru,
    "acs_application_en.docx": acs_application_en,
    "prosecutor_complaint_ru.docx": prosecutor_complaint_ru,
    "prosecutor_complaint_en.docx": prosecutor_complaint_en,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=ROOT / "flows" / "templates")
    args = parser.parse_args(argv)
    for name, build in TEMPLATES.items():
        path = args.out / name
        build().save(path)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
