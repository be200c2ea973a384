"""Documents: templates filled with answers, checked at load, sent right after the say."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from docx import Document
from lxml import etree

from engine.conversation import DOCX_MIME, Address, Inbound, SendDocument, SendText
from engine.documents import (
    MAX_VALUE_CHARS,
    DocumentError,
    DocumentRenderer,
    DocxRenderer,
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
