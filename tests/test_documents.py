"""Documents: templates filled with answers, checked at load, sent right after the say."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import shutil
import struct
import threading
import zipfile
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from docx import Document
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.packuri import PackURI
from docx.opc.part import Part
from lxml import etree

from engine import documents
from engine.conversation import DOCX_MIME, Address, Inbound, SendDocument, SendText
from engine.documents import (
    HELPERS,
    MAX_VALUE_CHARS,
    DocumentError,
    DocumentRenderer,
    DocxRenderer,
    _fill,
    _prepare,
    _render_docx_slow,
    acs_callup_year,
    acs_deadline,
    check_template,
    document_text,
    document_uses,
    format_date,
    format_long_date,
    render_docx,
    safe_file_name,
    template_files,
    template_variables,
)
from engine.loader import load_folder
from engine.runtime import Engine

FIXTURE = Path(__file__).parent / "data" / "documents"
FLOWS = Path(__file__).resolve().parent.parent / "flows"
TODAY = dt.date(2026, 11, 25)
ADDRESS = Address("test", "7")


def make_docx(path: Path, paragraphs: list[str], table: list[list[str]] | None = None) -> Path:
    """A .docx with one run per paragraph (so each placeholder is whole) and a table."""
    document = Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, text in enumerate(row):
                grid.cell(r, c).text = text
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


LETTER = {
    "ru": [
        "Письмо от {{ full_name }}, дата рождения {{ birth_date|date }}.",
        "Составлено {{ today|longdate }}; срок до {{ acs_deadline(callup)|longdate }}.",
    ],
    "en": [
        "Letter from {{ full_name }}, born {{ birth_date|date }}.",
        "Made on {{ today|longdate }}; deadline {{ acs_deadline(callup)|longdate }}.",
    ],
}


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A copy of tests/data/documents with its templates written in."""
    target = tmp_path / "flows"
    shutil.copytree(FIXTURE, target)
    for lang, paragraphs in LETTER.items():
        make_docx(target / "templates" / f"letter_{lang}.docx", paragraphs)
    return target


def render(paragraphs: list[str], answers: Mapping[str, object], language: str = "ru") -> bytes:
    buffer = io.BytesIO()
    document = Document()
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(buffer)
    return render_docx(buffer.getvalue(), answers, language, TODAY, "test.docx")


def body_xml(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("word/document.xml")


# --------------------------------------------------------------------------- rendering


def test_answers_fill_the_template_in_cyrillic() -> None:
    data = render(
        ["Я, {{ full_name }}, прошу.", "Родился {{ birth_date|date }}."],
        {"full_name": "Иванов Иван Иванович", "birth_date": dt.date(2004, 2, 1)},
    )
    text = document_text(data)
    assert "Я, Иванов Иван Иванович, прошу." in text
    assert "Родился 01.02.2004." in text
    etree.fromstring(body_xml(data))  # well-formed


def test_dates_are_written_the_way_each_language_writes_them() -> None:
    born = dt.date(2004, 2, 1)
    assert format_date(born, "ru") == "01.02.2004"
    assert format_date(born, "en") == "1 February 2004"
    assert format_long_date(TODAY, "ru") == "25 ноября 2026 г."
    assert format_long_date(TODAY, "en") == "25 November 2026"
    assert format_date("2004-02-01", "en") == "1 February 2004"  # a date kept as text
    assert format_date("не знаю", "ru") == "не знаю"  # not a date: unchanged
    paragraphs = ["{{ birth_date|date }} / {{ today|longdate }} / {{ birth_date }}"]
    answers = {"birth_date": born}
    assert "01.02.2004 / 25 ноября 2026 г. / 01.02.2004" in document_text(
        render(paragraphs, answers, "ru")
    )
    assert "1 February 2004 / 25 November 2026 / 1 February 2004" in document_text(
        render(paragraphs, answers, "en")
    )


def test_values_print_readably_and_a_missing_one_is_a_line_to_fill_in() -> None:
    text = document_text(
        render(
            ["{{ n }} {{ yes }} [{{ nothing }}] {{ absent }}"],
            {"n": 3.0, "yes": True, "nothing": None},
        )
    )
    assert "3 да [] ____________________" in text


@pytest.mark.parametrize(
    ("callup", "today", "deadline", "year"),
    [
        # spring call-up (April-July of the next year): file before 1 October
        ("spring", dt.date(2026, 1, 10), dt.date(2026, 10, 1), 2027),
        ("spring", dt.date(2026, 9, 30), dt.date(2026, 10, 1), 2027),
        ("spring", dt.date(2026, 10, 1), dt.date(2027, 10, 1), 2028),  # "before" excludes it
        ("spring", dt.date(2026, 12, 31), dt.date(2027, 10, 1), 2028),
        # autumn call-up (October-December of the same year): file before 1 April
        ("autumn", dt.date(2026, 1, 1), dt.date(2026, 4, 1), 2026),
        ("autumn", dt.date(2026, 3, 31), dt.date(2026, 4, 1), 2026),
        ("autumn", dt.date(2026, 4, 1), dt.date(2027, 4, 1), 2027),
        ("autumn", dt.date(2026, 12, 31), dt.date(2027, 4, 1), 2027),
        ("Autumn ", dt.date(2027, 1, 1), dt.date(2027, 4, 1), 2027),
    ],
)
def test_acs_deadline_by_season_across_year_boundaries(
    callup: str, today: dt.date, deadline: dt.date, year: int
) -> None:
    assert acs_deadline(callup, today) == deadline
    assert acs_callup_year(callup, today) == year


@pytest.mark.parametrize("callup", ["unknown", "", None, 3])
def test_acs_deadline_of_an_unknown_season_is_none(callup: object) -> None:
    assert acs_deadline(callup, TODAY) is None
    assert acs_callup_year(callup, TODAY) is None
    text = document_text(
        render(["{% if acs_deadline(c) %}one{% else %}both{% endif %}"], {"c": callup})
    )
    assert "both" in text


def test_acs_deadline_in_a_template_uses_the_conversation_date() -> None:
    data = render(["до {{ acs_deadline(callup)|longdate }}"], {"callup": "spring"})
    assert "до 1 октября 2027 г." in document_text(data)


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "answer", ["{{ 7*7 }}", "{% for x in y %}", "{{ ''.__class__.__mro__ }}", "{_{ x }_}", "{#"]
)
def test_an_answer_is_data_never_template_source(answer: str) -> None:
    text = document_text(render(["Имя: {{ full_name }}."], {"full_name": answer}))
    expected = answer.replace("{_{", "{{").replace("}_}", "}}")  # docxtpl's own escape
    assert f"Имя: {expected}." in text
    assert "49" not in text


def test_markup_in_an_answer_stays_text_and_the_xml_stays_valid() -> None:
    answer = "<script>alert(1)</script> & </w:t></w:r><w:p> \"'"
    data = render(["{{ a }}"], {"a": answer})
    etree.fromstring(body_xml(data))
    assert answer in document_text(data)
    Document(io.BytesIO(data))  # Word's reader opens it


def test_the_sandbox_refuses_unsafe_template_code() -> None:
    with pytest.raises(DocumentError) as caught:
        render(["{{ ''.__class__.__mro__[1].__subclasses__() }}"], {})
    assert str(caught.value) == "test.docx: SecurityError"


def test_control_characters_are_dropped_and_line_breaks_kept() -> None:
    answer = "one\x00\x07\x0b\x0c\x1b two\r\nthree\n\n\n\n\nfour\ud800 five\ufffe"
    data = render(["{{ a }}"], {"a": answer})
    etree.fromstring(body_xml(data))
    text = document_text(data)
    assert "one two\nthree\n\nfour five" in text
    assert b'w:type="page"' not in body_xml(data)  # \x0c did not become a page break


def test_a_huge_answer_is_capped() -> None:
    answers = {"a": "я" * 100_000, "b": "line\n" * 20_000, "c": ["x" * 100_000] * 1000}
    data = render(["[{{ a }}]", "{{ b }}", "{{ c|length }}"], answers)
    text = document_text(data)
    assert "я" * (MAX_VALUE_CHARS - 1) + "…]" in text
    assert text.count("line") == MAX_VALUE_CHARS // len("line\n")
    assert text.endswith("\n100")  # at most 100 items of a list
    assert len(body_xml(data)) < 80_000


def test_file_names_are_safe() -> None:
    assert safe_file_name("Заявление об АГС.docx") == "Заявление об АГС.docx"
    assert safe_file_name("../../etc/passwd") == "_.._etc_passwd.docx"
    assert safe_file_name("a\x00b/c\\d:e\n.docx") == "ab_c_d_e_.docx"
    assert safe_file_name("...") == "document.docx"
    assert len(safe_file_name("я" * 500)) <= 120


# --------------------------------------------------------------------------- checking


def test_a_syntax_error_names_the_template_and_the_paragraph(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "bad.docx", ["Fine {{ a }}", "Broken {{ a b }}", "After"])
    (problem,) = check_template(path)
    assert problem.startswith("bad.docx, paragraph 2 ('Broken {{ a b }}'):")
    assert "expected token" in problem


def test_an_unclosed_block_and_an_unknown_filter_are_reported(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "open.docx", ["{% if a %}", "text"])
    assert "Unexpected end of template" in check_template(path)[0]
    path = make_docx(tmp_path / "filter.docx", ["{{ a|shout }}"])
    assert "No filter named 'shout'" in check_template(path)[0]


def test_tags_that_break_words_structure_are_reported(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "split.docx", ["after"], table=[["{% if a %}in a cell", "x"]])
    document = Document(str(path))
    document.add_paragraph("{% endif %} outside the table")
    document.save(str(path))
    (problem,) = check_template(path)
    assert "split.docx: the filled document is not valid XML" in problem
    assert "{%p" in problem


def test_a_file_that_is_not_a_docx_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "old.docx"
    path.write_bytes(b"\xd0\xcf\x11\xe0 an old Word 97 file")
    assert check_template(path) == ["old.docx is not a Word .docx file (save it in Word as .docx)"]
    assert "does not exist" in check_template(tmp_path / "none.docx")[0]


def test_template_variables_and_document_uses(folder: Path) -> None:
    path = folder / "templates" / "letter_ru.docx"
    assert template_variables(path) == {
        "full_name",
        "birth_date",
        "today",
        "acs_deadline",
        "callup",
    }
    flows, report = load_folder(folder)
    assert flows is not None, [str(d) for d in report.diagnostics]
    step = flows.flows["letter"].steps["ready"]
    expected = ["birth_date", "callup", "full_name"]
    assert document_uses(step, folder) == expected
    assert document_uses(step, folder, ["ru", "en"]) == expected
    assert document_uses(flows.flows["letter"].steps["done"], folder) == []


def test_lang_in_a_template_path_is_matched_in_names_and_folders(tmp_path: Path) -> None:
    for name in ["t/ru/a.docx", "t/en/a.docx", "t/draft/a.docx", "b_ru.docx", "b_old_ru.docx"]:
        make_docx(tmp_path / name, ["x"])
    found = template_files(tmp_path, "t/{lang}/a.docx")
    assert {k: v.relative_to(tmp_path.resolve()).as_posix() for k, v in found.items()} == {
        "en": "t/en/a.docx",
        "ru": "t/ru/a.docx",
    }
    assert list(template_files(tmp_path, "b_{lang}.docx")) == ["ru"]
    assert list(template_files(tmp_path, "b_{lang}.docx", ["ru", "en"])) == ["ru", "en"]
    assert list(template_files(tmp_path, "b_ru.docx")) == ["*"]
    with pytest.raises(DocumentError, match="inside the flows folder"):
        template_files(tmp_path, "../{lang}.docx")


def check_messages(folder: Path) -> list[str]:
    flows, report = load_folder(folder)
    assert flows is None
    return [str(d) for d in report.errors]


def test_check_reports_a_variable_no_answer_saves(folder: Path) -> None:
    make_docx(folder / "templates" / "letter_en.docx", ["{{ ful_name }} {{ today }}"])
    (message,) = check_messages(folder)
    assert "letter.yaml:25:17: error: step 'ready': document template " in message
    assert "'templates/letter_{lang}.docx' uses 'ful_name', which no input or choice saves" in (
        message
    )
    assert message.endswith("did you mean 'full_name'?")


def test_check_reports_a_missing_language_and_a_broken_template(folder: Path) -> None:
    (folder / "templates" / "letter_en.docx").unlink()
    make_docx(folder / "templates" / "letter_ru.docx", ["{{ full_name "])
    messages = check_messages(folder)
    assert len(messages) == 2
    assert any("(en) does not exist" in m and "letter_en.docx" in m for m in messages)
    assert any("(ru): letter_ru.docx, paragraph 1" in m for m in messages)


def test_check_refuses_a_template_outside_the_folder(folder: Path) -> None:
    flow = folder / "letter.yaml"
    flow.write_text(flow.read_text().replace("templates/letter_{lang}", "../letter_{lang}"))
    (message,) = check_messages(folder)
    assert "must be inside the flows folder" in message


def test_the_bundled_templates_pass_the_check() -> None:
    for path in sorted((FLOWS / "templates").glob("*.docx")):
        assert check_template(path) == [], path.name
    variables = template_variables(FLOWS / "templates" / "acs_application_ru.docx")
    assert {"full_name", "birth_date", "address", "commissariat", "reasons", "callup"} <= variables


@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_bundled_acs_application_renders_with_real_answers(language: str) -> None:
    answers = {
        "full_name": "Иванов Иван Иванович",
        "birth_date": dt.date(2004, 2, 1),
        "address": "443000, г. Самара, ул. Ленина, д. 1, кв. 2",
        "commissariat": "Военный комиссариат Ленинского района г. Самары",
        "reasons": "Я верю, что убивать нельзя.\nС 2020 года я волонтёр.",
        "callup": "autumn",
    }
    data = DocxRenderer(FLOWS).render(
        "templates/acs_application_{lang}.docx", answers, language, TODAY
    )
    text = document_text(data)
    assert "Иванов Иван Иванович" in text and "Я верю, что убивать нельзя.\nС 2020" in text
    if language == "ru":
        assert "113-ФЗ" in text and "до 1 апреля 2027 г." in text
    else:
        assert "113-FZ" in text and "before 1 April 2027" in text
    assert "{{" not in text and "{%" not in text


# --------------------------------------------------------------------------- reading


def test_document_text_reads_paragraphs_and_tables_in_order(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "t.docx", ["First"], table=[["a", "b"], ["c", "d"]])
    document = Document(str(path))
    document.add_paragraph("Last")
    document.sections[0].header.paragraphs[0].text = "Header"
    document.save(str(path))
    assert document_text(path.read_bytes()) == "First\na\tb\nc\td\nLast\nHeader"
    with pytest.raises(ValueError, match=r"not a \.docx"):
        document_text(b"plain text")


# --------------------------------------------------------------------------- runtime


def run_conversation(engine: Engine, language: str = "ru") -> list:
    actions: list = []
    session = None

    def feed(event: Inbound) -> None:
        nonlocal session
        outcome = engine.handle(session, event)
        session = outcome.session
        actions[:] = outcome.actions

    feed(Inbound.typed(ADDRESS, "/start", language))
    feed(Inbound.press(ADDRESS, actions[0].buttons[0].payload, language))  # the letter flow
    feed(Inbound.typed(ADDRESS, "Пётр ../Петров", language))
    feed(Inbound.typed(ADDRESS, "01.02.2004", language))
    feed(Inbound.press(ADDRESS, actions[0].buttons[0].payload, language))  # spring
    return actions


def make_engine(folder: Path, documents: DocumentRenderer | None = None) -> Engine:
    flows, report = load_folder(folder)
    assert flows is not None, [str(d) for d in report.diagnostics]
    return Engine(flows, clock=lambda: dt.datetime(2026, 11, 25, 12, 0), documents=documents)


def test_the_engine_sends_the_document_right_after_the_say(folder: Path) -> None:
    actions = run_conversation(make_engine(folder))
    assert [type(a) for a in actions] == [SendText, SendDocument, SendText]
    say, document, done = actions
    assert say.text == "Пётр ../Петров, документ готов."
    assert document.to == ADDRESS and document.mime_type == DOCX_MIME
    assert document.file_name == "Письмо Пётр .._Петров.docx"
    text = document_text(document.data)
    assert "Письмо от Пётр ../Петров, дата рождения 01.02.2004." in text
    assert "Составлено 25 ноября 2026 г.; срок до 1 октября 2027 г." in text
    assert done.text == "Всё."


def test_the_document_follows_the_persons_language(folder: Path) -> None:
    _, document, _ = run_conversation(make_engine(folder), "en")
    assert document.file_name == "Letter Пётр .._Петров.docx"
    assert "Made on 25 November 2026; deadline 1 October 2027." in document_text(document.data)


def test_the_renderer_reads_each_template_once(folder: Path) -> None:
    renderer = DocxRenderer(folder)
    answers = {"full_name": "A", "birth_date": TODAY, "callup": "spring"}
    first = renderer.render("templates/letter_ru.docx", answers, "ru", TODAY)
    (folder / "templates" / "letter_ru.docx").unlink()
    again = renderer.render("templates/letter_ru.docx", answers, "ru", TODAY)
    assert document_text(first) == document_text(again)
    with pytest.raises(DocumentError) as caught:
        renderer.render("templates/letter_xx.docx", answers, "ru", TODAY)
    assert caught.value.kind == "missing"


def test_a_document_that_cannot_be_made_gets_the_error_text(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(DocumentRenderer):
        def render(self, template, answers, language, today) -> bytes:  # type: ignore[override]
            raise DocumentError(f"{template}: secret {answers['full_name']}", "render")

    actions = run_conversation(make_engine(folder, Broken()))
    # The engine only prepares the document; making it fails when its bytes are asked for
    # (by the hub, in a worker thread), which then sends the fallback text instead.
    assert [type(a) for a in actions] == [SendText, SendDocument, SendText]
    assert actions[1].fallback_text.startswith("Что-то пошло не так")
    with pytest.raises(DocumentError):
        _ = actions[1].data
    assert "letter.ready" in caplog.text and "Петров" not in caplog.text


def test_check_reports_a_template_variable_some_path_does_not_save(folder: Path) -> None:
    flow = folder / "letter.yaml"
    skip = "        set: {callup: autumn}\n        goto: ready"
    flow.write_text(flow.read_text().replace(skip, "        goto: ready"))
    (message,) = check_messages(folder)
    assert message.endswith(
        "letter.yaml:24:17: error: step 'ready': 'callup' may not be saved yet: a path reaches "
        "this step without saving it (for example when coming from step 'season')"
    )


# --------------------------------------------------------------------------- speed
# DocxRenderer prepares each template once and fills it without python-docx or docxtpl's
# save (engine/documents.py, `_prepare` and `_fill`). These tests hold it to docxtpl's own
# path, `_render_docx_slow`: the same text and the same XML in every part it renders.


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    pixels = chunk(b"IDAT", zlib.compress(b"\0\0"))
    return b"\x89PNG\r\n\x1a\n" + header + pixels + chunk(b"IEND", b"")


FOOTNOTES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    '<w:footnotes xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
    '<w:footnote w:id="1"><w:p><w:r><w:t>Сноска: {{ full_name }}</w:t></w:r></w:p></w:footnote>'
    "</w:footnotes>"
)


def make_rich_docx(path: Path, sections: int = 1) -> Path:
    """A template using what docxtpl offers: headers and footers, {%p %} paragraphs, {%tr %}
    rows, {%tc %} cells (which make docxtpl fix the table grid), {{r }}, comments, pictures
    (renumbered docPr ids), footnotes, tabs and new lines in answers."""
    document = Document()
    document.add_paragraph("Заявитель: {{ full_name }}, {{ birth_date|date }}; {{ lang }}.")
    document.add_paragraph("{%p if flag %}")
    document.add_paragraph("Только если: {{ flag }} {{ note }}")
    document.add_paragraph("{%p endif %}")
    document.add_paragraph("Комментарий{# не печатается #}: {% if note %}{{ note }}{% endif %}.")
    document.add_paragraph("Run: {{r full_name }} end")
    rows = document.add_table(rows=3, cols=2)
    rows.cell(0, 0).text = "{%tr for item in items %}"
    rows.cell(1, 0).text = "{{ loop.index }}"
    rows.cell(1, 1).text = "{{ item }}"
    rows.cell(2, 0).text = "{%tr endfor %}"
    cells = document.add_table(rows=1, cols=3)
    for column, text in enumerate(["{%tc for x in items %}", "{{ x }}", "{%tc endfor %}"]):
        cells.cell(0, column).text = text
    document.add_picture(io.BytesIO(tiny_png()))
    document.add_picture(io.BytesIO(tiny_png()))
    document.add_paragraph("{{ today|longdate }}\t{{ note }}")
    section = document.sections[0]
    section.header.paragraphs[0].text = "Шапка: {{ full_name }}"
    section.footer.paragraphs[0].text = "{{ today|longdate }} / {{ lang }}"
    section.different_first_page_header_footer = True
    section.first_page_header.paragraphs[0].text = "Первая страница: {{ note }}"
    for _ in range(sections - 1):
        document.add_section()
        document.add_paragraph("Раздел: {{ full_name }}")
    footnotes = Part(
        PackURI("/word/footnotes.xml"),
        FOOTNOTES_TYPE,
        FOOTNOTES.encode("utf-8"),
        document.part.package,
    )
    document.part.relate_to(footnotes, RT.FOOTNOTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


FOOTNOTES_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
ODD = "one\x00\x07\x0b\x0c\x1b two\r\nthree\t\tfour\n\n\n\n\nfive\ud800 six\ufffe\x7f"
ANSWER_SETS: dict[str, object] = {
    "cyrillic": "Иванов Иван Иванович, г. Самара, ул. Ленина, д. 1",
    "markup": "<script>&amp; {{ 7*7 }} {% if x %} {_{ y }_} {# </w:t></w:r><w:p> \"' &",
    "huge": "я" * 100_000,
    "control": ODD,
    "empty": "",
    "none": None,
}


def templates_to_compare(tmp_path: Path) -> list[Path]:
    """Every bundled template, the fixture's letters and the rich template."""
    letters = tmp_path / "letters"
    for lang, paragraphs in LETTER.items():
        make_docx(letters / f"letter_{lang}.docx", paragraphs)
    make_docx(letters / "table.docx", ["{{ a }}"], table=[["{{ full_name }}", "{{ a }}"]])
    return [
        *sorted((FLOWS / "templates").glob("*.docx")),
        *sorted(letters.glob("*.docx")),
        make_rich_docx(tmp_path / "rich.docx"),
    ]


def answers_for(path: Path, value: object) -> dict[str, object]:
    answers: dict[str, object] = dict.fromkeys(template_variables(path) - HELPERS, value)
    if "items" in answers:
        answers["items"] = [value, "второй\tстолбец", "третий\nс переносом", 4.0]
    return answers


def realistic_answers(path: Path) -> dict[str, object]:
    answers = answers_for(path, "Иванов Иван\nИванович")
    for name in answers:
        if "birth" in name or "since" in name:
            answers[name] = dt.date(2004, 2, 1)
    answers.update(callup="spring", relation="son", flag=True, note=3.0)
    return {name: value for name, value in answers.items() if name != "unit"}  # one missing


def rendered_parts(blob: bytes) -> set[str]:
    return {part.member for part in _prepare(blob, "ru").parts}


def assert_same_document(template: bytes, fast: bytes, slow: bytes, rendered: set[str]) -> None:
    """Same text; each rendered part byte for byte what docxtpl and python-docx write; every
    other member the template's own bytes (python-docx would re-serialise some)."""
    assert document_text(fast) == document_text(slow)
    Document(io.BytesIO(fast))  # python-docx opens it
    with (
        zipfile.ZipFile(io.BytesIO(fast)) as got,
        zipfile.ZipFile(io.BytesIO(slow)) as want,
        zipfile.ZipFile(io.BytesIO(template)) as original,
    ):
        assert got.testzip() is None
        assert sorted(got.namelist()) == sorted(want.namelist())
        assert "word/document.xml" in rendered
        for name in got.namelist():
            if name in rendered:
                assert got.read(name) == want.read(name), name
                canonical = etree.tostring(etree.fromstring(got.read(name)), method="c14n")
                assert canonical == etree.tostring(etree.fromstring(want.read(name)), method="c14n")
            else:
                assert got.read(name) == original.read(name), name


def test_the_fast_path_makes_what_docxtpl_makes(tmp_path: Path) -> None:
    for path in templates_to_compare(tmp_path):
        blob = path.read_bytes()
        language = "en" if path.stem.endswith("_en") else "ru"
        prepared = _prepare(blob, language)
        rendered = {part.member for part in prepared.parts}
        cases = [realistic_answers(path)]
        cases += [answers_for(path, value) for value in ANSWER_SETS.values()]
        cases.append({})  # nothing answered: every value a line to fill in
        assert _fill(prepared, {}, language, TODAY) == render_docx(blob, {}, language, TODAY)
        for answers in cases:
            fast = _fill(prepared, answers, language, TODAY)
            slow = _render_docx_slow(blob, answers, language, TODAY, path.name)
            assert_same_document(blob, fast, slow, rendered)


def test_the_rich_template_is_filled_as_docxtpl_fills_it(tmp_path: Path) -> None:
    path = make_rich_docx(tmp_path / "rich.docx")
    assert rendered_parts(path.read_bytes()) == {
        "word/document.xml",
        "word/header1.xml",
        "word/header2.xml",
        "word/footer1.xml",
        "word/footnotes.xml",
    }
    data = DocxRenderer(tmp_path).render("rich.docx", realistic_answers(path), "en", TODAY)
    text = document_text(data)
    assert "Заявитель: Иванов Иван\nИванович, 1 February 2004; en." in text
    assert "Только если: yes 3" in text and "{#" not in text
    assert "2\tвторой\tстолбец" in text  # a {%tr %} row per item; a tab in an answer
    assert "Иванов Иван\nИванович\tвторой\tстолбец\tтретий\nс переносом\t4" in text  # {%tc %}
    assert "25 November 2026\t3" in text
    assert "Шапка: Иванов Иван\nИванович" in text and "25 November 2026 / en" in text
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        body = archive.read("word/document.xml")
        footnotes = archive.read("word/footnotes.xml").decode("utf-8")
    assert b'<w:gridCol w:w="' in body and body.count(b"<w:gridCol ") == 2 + 4  # fix_tables
    assert b'id="1001"' in body and b'id="1002"' in body  # fix_docpr_ids
    assert "Сноска: Иванов Иван</w:t><w:br/>" in footnotes


def test_an_answer_in_a_footnote_is_never_compiled(tmp_path: Path) -> None:
    # docxtpl renders footnotes once per section, the second time from the first output,
    # which would compile an answer; the fast path renders them once.
    path = make_rich_docx(tmp_path / "two.docx", sections=2)
    data = render_docx(path.read_bytes(), {"full_name": "{{ 7*7 }}"}, "ru", TODAY)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        footnotes = archive.read("word/footnotes.xml").decode("utf-8")
    assert "Сноска: {{ 7*7 }}" in footnotes and "49" not in footnotes
    assert "Раздел: {{ 7*7 }}" in document_text(data)


def test_core_properties_with_jinja_take_docxtpls_path(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "titled.docx", ["{{ full_name }}"])
    document = Document(str(path))
    document.core_properties.title = "Заявление {{ full_name }}"
    document.save(str(path))
    data = render_docx(path.read_bytes(), {"full_name": "Петров & Ко"}, "ru", TODAY)
    assert Document(io.BytesIO(data)).core_properties.title.startswith("Заявление Петров")
    assert document_text(data) == "Петров & Ко"


@pytest.fixture()
def prepared(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The language of every template `_prepare`d from now on."""
    languages: list[str] = []
    real = documents._prepare

    def counting(blob: bytes, language: str):  # type: ignore[no-untyped-def]
        languages.append(language)
        return real(blob, language)

    monkeypatch.setattr(documents, "_prepare", counting)
    return languages


def test_the_renderer_prepares_each_template_once_and_again_when_it_changes(
    folder: Path, prepared: list[str]
) -> None:
    renderer = DocxRenderer(folder)
    answers = {"full_name": "A", "birth_date": TODAY, "callup": "spring"}
    for _ in range(3):
        renderer.render("templates/letter_{lang}.docx", answers, "ru", TODAY)
    renderer.render("templates/letter_{lang}.docx", answers, "en", TODAY)
    assert prepared == ["ru", "en"]
    path = folder / "templates" / "letter_ru.docx"
    stamp = path.stat().st_mtime_ns
    make_docx(path, ["Новый текст {{ full_name }}"])
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    data = renderer.render("templates/letter_{lang}.docx", answers, "ru", TODAY)
    assert document_text(data) == "Новый текст A"
    assert prepared == ["ru", "en", "ru"]


def test_a_broken_template_is_not_prepared_again_until_it_changes(
    tmp_path: Path, prepared: list[str]
) -> None:
    make_docx(tmp_path / "bad.docx", ["{{ a b }}"])
    (tmp_path / "old.docx").write_bytes(b"\xd0\xcf\x11\xe0 an old Word 97 file")
    renderer = DocxRenderer(tmp_path)
    for _ in range(2):
        with pytest.raises(DocumentError) as caught:
            renderer.render("bad.docx", {}, "ru", TODAY)
        assert caught.value.kind == "template"
        assert str(caught.value) == "bad.docx: TemplateSyntaxError"
        with pytest.raises(DocumentError) as caught:
            renderer.render("old.docx", {}, "ru", TODAY)
        assert caught.value.kind == "render"
        assert str(caught.value) == "old.docx: BadZipFile"
    assert prepared == ["ru", "ru"]


def test_threads_share_the_prepared_templates(prepared: list[str]) -> None:
    jobs = [
        (template, language, {"full_name": f"Имя {n}", "reasons": f"<&>\n{n}", "unit": n})
        for n in range(6)
        for template in ("acs_application_{lang}.docx", "prosecutor_complaint_{lang}.docx")
        for language in ("ru", "en")
    ]
    expected = [
        render_docx((FLOWS / "templates" / t.replace("{lang}", lang)).read_bytes(), a, lang, TODAY)
        for t, lang, a in jobs
    ]
    prepared.clear()
    renderer = DocxRenderer(FLOWS / "templates")
    start = threading.Barrier(8)

    def work(job: tuple[str, str, dict[str, object]]) -> bytes:
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait(timeout=5)
        template, language, answers = job
        return renderer.render(template, answers, language, TODAY)

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(work, jobs))
    assert got == expected  # the output does not depend on the time or on other threads
    assert sorted(prepared) == ["en", "en", "ru", "ru"]  # once per file
