"""Transcripts: reading them with FILE:LINE:COL, the matching rules, failures, coverage."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from engine.conversation import HandoverContext, SendDocument, SendText, StartHandover
from engine.loader import load_folder
from engine.model import FlowSet
from engine.runtime import Outcome
from engine.transcripts import (
    Failure,
    Replayer,
    Run,
    Transcript,
    compute_coverage,
    parse_transcript,
)
from engine.transcripts import matching as matching_module
from engine.transcripts.matching import ADDRESS

FLOWS = Path(__file__).parent / "data" / "replay"


@pytest.fixture(scope="module")
def flows() -> FlowSet:
    flows, report = load_folder(FLOWS)
    assert flows is not None, [str(d) for d in report.diagnostics]
    return flows


@pytest.fixture(scope="module")
def replayer(flows: FlowSet) -> Replayer:
    return Replayer(flows)


def read(text: str) -> Transcript:
    transcript, report = parse_transcript(textwrap.dedent(text), "t.yaml", Path("."))
    assert transcript is not None, [str(d) for d in report.diagnostics]
    return transcript


def problems(text: str) -> list[str]:
    transcript, report = parse_transcript(textwrap.dedent(text), "t.yaml", Path("."))
    assert transcript is None
    return [
        f"{d.position.line}:{d.position.column}: {d.message}" for d in report.sorted() if d.message
    ]


def replay(replayer: Replayer, *steps: str, header: str = "language: en") -> Run:
    """Replay a transcript made of `header` and the `steps`, each dedented on its own."""
    body = "".join(textwrap.dedent(part) for part in steps)
    return replayer.replay(read(f"transcript: test\n{header}\nsteps:\n{body}"))


MENU = """\
- user: /start
- bot: Hello! Pick a topic.
  buttons: [I got a summons, Talk to a lawyer]
"""


# --------------------------------------------------------------------------- reading


def test_a_well_formed_transcript_is_read_with_every_key() -> None:
    transcript = read(
        """\
        transcript: Conscript, born 1990
        language: ru
        now: 2026-03-01T10:00
        channel: console
        flows: ../flows
        steps:
          - user: /start
          - bot: /Здравствуйте|Hello/
            buttons: [Мне пришла повестка, 2]
          - press: Мне пришла повестка
          - document: Заявление.docx
            contains: [Иванов]
          - handover: lawyers
        """
    )
    assert transcript.title == "Conscript, born 1990" and transcript.language == "ru"
    assert transcript.now == dt.datetime(2026, 3, 1, 10, 0)
    assert transcript.channel == "console" and transcript.flows == Path("../flows")
    user, bot, press, document, handover = transcript.lines
    assert (user.kind, user.text, user.position.line) == ("user", "/start", 7)
    assert bot.pattern is not None and bot.buttons == ("Мне пришла повестка", "2")
    assert press.text == "Мне пришла повестка"
    assert document.contains == ("Иванов",)
    assert handover.text == "lawyers" and handover.position.line == 13


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-03-01", dt.datetime(2026, 3, 1, 12, 0)),  # a bare date: noon
        ("2026-03-01T10:00", dt.datetime(2026, 3, 1, 10, 0)),
        ("2026-03-01 10:00:00", dt.datetime(2026, 3, 1, 10, 0)),
        ("'2026-03-01'", dt.datetime(2026, 3, 1, 12, 0)),
    ],
)
def test_now_takes_a_date_or_a_date_and_time(now: str, expected: dt.datetime) -> None:
    assert read(f"transcript: t\nnow: {now}\nsteps:\n  - user: hi\n").now == expected


def test_unquoted_numbers_and_words_stay_the_text_as_written() -> None:
    transcript = read(
        """\
        transcript: t
        steps:
          - user: 01.02.2004
          - user: 2004
          - user: yes
          - bot: 1.10
            buttons: [1, no]
        """
    )
    assert [line.text for line in transcript.lines] == ["01.02.2004", "2004", "yes", "1.10"]
    assert transcript.lines[-1].buttons == ("1", "no")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "transcript: t\nlangauge: ru\nsteps: [{user: hi}]\n",
            "2:1: unknown key 'langauge'; did you mean 'language'?",
        ),
        (
            "transcript: t\nsteps:\n  - user: hi\n    buttns: [a]\n",
            "4:5: unknown key 'buttns' in a step; did you mean 'buttons'?",
        ),
        (
            "transcript: t\nsteps:\n  - user: hi\n  - {}\n",
            "4:5: this step has none of user:, press:, bot:, document:, handover:",
        ),
        (
            "transcript: t\nsteps:\n  - user: hi\n    bot: Hello\n",
            "4:5: this step has both 'user:' and 'bot:'; a step has exactly one",
        ),
        (
            "transcript: t\nsteps:\n  - bot: /a(b/\n",
            "3:10: bot: /a(b/ is not a valid regular expression: missing ), unterminated "
            "subpattern at character 2",
        ),
        (
            "transcript: t\nsteps:\n  - bot: Hello\n    buttons: Yes\n",
            "4:14: buttons: must be a list of button labels, e.g. [Yes, No]",
        ),
        (
            "transcript: t\nsteps:\n  - bot: Hello\n    buttons: [a, [b]]\n",
            "4:18: buttons: each item must be a text, not a list",
        ),
        (
            "transcript: t\nsteps:\n  - user: hi\n    buttons: [a]\n",
            "4:5: 'buttons:' belongs to a bot: line, not to a user: line",
        ),
        (
            "transcript: t\nsteps:\n  - document: a.docx\n    contains: x\n",
            "4:15: contains: must be a list of texts",
        ),
        ("transcript: t\nsteps:\n  - press:\n", "3:11: press: needs a text after it"),
        ("transcript: t\nsteps:\n  - user hi\n", "3:5: each step is one mapping"),
        ("transcript: t\nsteps: []\n", "2:8: steps: the transcript has no steps"),
        ("transcript: t\nsteps: {user: hi}\n", "2:8: steps: must be a list of lines"),
        ("language: ru\nsteps: [{user: hi}]\n", "1:1: missing the required key 'transcript'"),
        ("transcript: t\n", "1:1: missing the required key 'steps'"),
        ("- user: hi\n", "1:1: a transcript is a mapping"),
        (
            "transcript: t\nchannel: telegarm\nsteps: [{user: hi}]\n",
            "2:10: channel: must be one of console, telegram, matrix; did you mean 'telegram'?",
        ),
        (
            "transcript: t\nnow: tomorrow\nsteps: [{user: hi}]\n",
            "2:6: now: write a date or a date and time",
        ),
        ("transcript: t\nlanguage: [ru]\nsteps: [{user: hi}]\n", "2:11: language: write a"),
        ("transcript: t\nsteps:\n  - user: a\n  - user: b\n  - user: a\n  user: c\n", "6:3:"),
        (
            "transcript: t\nsteps:\n  - user: &a hi\n  - user: *a\n",
            "4:11: alias",
        ),
        ("transcript: t\ntranscript: u\nsteps: [{user: hi}]\n", "2:1: duplicate key"),
    ],
)
def test_a_malformed_transcript_is_reported_at_its_line_and_column(
    text: str, expected: str
) -> None:
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_of_a_file_is_reported_not_only_the_first() -> None:
    found = problems(
        """\
        transcript: t
        langage: ru
        steps:
          - usr: hi
          - bot: /(/
          - press: OK
            bot: OK
        """
    )
    assert [p.split(":")[0] for p in found] == ["2", "4", "5", "7"]


def test_a_file_is_read_with_its_display_name(tmp_path: Path) -> None:
    from engine.transcripts import load_transcript

    path = tmp_path / "bad.yaml"
    path.write_text("transcript: t\nsteps:\n  - user: [\n", encoding="utf-8")
    transcript, report = load_transcript(path, "shown/bad.yaml")
    assert transcript is None
    (diagnostic,) = report.errors
    assert str(diagnostic).startswith("shown/bad.yaml:4:1: error: invalid YAML")
    path.write_bytes(b"transcript: \xff\n")
    assert "not UTF-8" in str(load_transcript(path)[1].errors[0])


# --------------------------------------------------------------------------- matching


def test_a_whole_conversation_replays_green(replayer: Replayer) -> None:
    run = replay(
        replayer,
        MENU,
        """\
        - press: I got a summons
        - bot: What kind of summons?
          buttons: [Conscription, Mobilisation, Talk to a lawyer]
        - press: Mobilisation
        - bot: Your full name?
        - user: Ivan
        - bot: Please write your full name.
        - bot: Your full name?
        - user: Ivan Petrov
        - bot: /^Ivan Petrov, your date of birth\\?$/
          buttons: []
        - user: 01.02.2004
        - bot: Your phone?
        - user: +7 900 123-45-67
        - bot: Thank you, Ivan Petrov (mobilisation), we will call +79001234567.
        """,
        header="language: en\nnow: 2026-03-01",
    )
    assert run.passed, run.message()
    assert run.lines == 15 and run.seconds > 0


def test_bot_text_is_a_substring_and_a_regex_is_searched(replayer: Replayer) -> None:
    assert replay(replayer, "- user: /start\n- bot: Pick a\n").passed
    assert replay(replayer, "- user: /start\n- bot: /P.ck a t/\n").passed
    run = replay(replayer, "- user: /start\n- bot: /^Pick/\n")
    assert run.failure is not None
    assert run.failure.expected == "expected a bot message matching /^Pick/"


def test_buttons_must_be_exact_and_in_order(replayer: Replayer) -> None:
    run = replay(
        replayer, "- user: /start\n- bot: Hello\n  buttons: [Talk to a lawyer, I got a summons]\n"
    )
    assert run.failure is not None
    assert run.failure.diff == ("+ I got a summons", "  Talk to a lawyer", "- I got a summons")
    run = replay(
        replayer, "- user: /start\n- bot: Hello\n  buttons: [I got a summons, Talk to a]\n"
    )
    assert run.failure is not None and "with the buttons [I got a summons] [Talk to a]" in str(
        run.failure
    )
    run = replay(replayer, "- user: /start\n- bot: Hello\n  buttons: []\n")
    assert run.failure is not None and run.failure.expected.endswith("with no buttons")


def test_press_needs_the_exact_label_of_a_shown_button(replayer: Replayer) -> None:
    run = replay(replayer, MENU + "- press: I got a sumons\n")
    assert run.failure is not None
    assert run.failure.line == 7
    assert run.failure.expected == 'expected a button "I got a sumons" to press'
    assert run.failure.sent == ("[I got a summons] [Talk to a lawyer]",)
    assert run.failure.diff[:2] == ("- I got a sumons", "+ I got a summons")
    run = replay(replayer, "- press: Anything\n")
    assert run.failure is not None and run.failure.heading == "the bot has shown no buttons yet"


def test_press_uses_the_latest_message_that_had_buttons(replayer: Replayer) -> None:
    run = replay(
        replayer,
        MENU,
        """\
        - press: I got a summons
        - bot: What kind
        - press: Conscription
        - bot: Your full name?
        - press: Mobilisation
        - bot: That question has moved on
        - bot: Your full name?
        """,
    )
    assert run.passed, run.message()


def test_a_message_the_transcript_skips_fails_the_next_input(replayer: Replayer) -> None:
    run = replay(replayer, "- user: /start\n- user: /help\n")
    assert run.failure is not None
    assert run.failure.line == 5
    assert run.failure.expected == 'expected no more bot messages before "user: /help"'
    assert run.failure.heading == "the bot also said:"
    assert run.failure.sent[0] == "Hello! Pick a topic."


def test_an_unmatched_message_at_the_end_fails(replayer: Replayer) -> None:
    run = replay(replayer, MENU + "- press: Talk to a lawyer\n- bot: Passing you\n")
    assert run.failure is not None
    assert run.failure.line == 8
    assert run.failure.expected == "expected the end of the conversation after this line"
    assert run.failure.sent == ("A lawyer will answer here.",)


def test_a_bot_line_with_no_message_left_fails(replayer: Replayer) -> None:
    run = replay(replayer, MENU + "- bot: Anything else\n")
    assert run.failure is not None
    assert run.failure.line == 7
    assert run.failure.heading == 'the bot sent nothing more after line 4 ("user: /start")'
    run = replay(replayer, "- bot: Hello\n")
    assert run.failure is not None and "starts with a user: line" in run.failure.heading


def test_handover_needs_a_handover_to_that_queue(replayer: Replayer) -> None:
    to_lawyer = MENU + "- press: Talk to a lawyer\n- bot: Passing\n- bot: A lawyer will\n"
    assert replay(replayer, to_lawyer + "- handover: lawyers\n").passed
    run = replay(replayer, to_lawyer + "- handover: lawyers\n- user: hi\n- handover: lawyers\n")
    assert run.failure is not None and run.failure.line == 12  # only once per hand-over
    assert run.failure.heading == "there was no hand-over"
    run = replay(replayer, to_lawyer + "- handover: operators\n")
    assert run.failure is not None
    assert run.failure.expected == (
        'expected a hand-over to the "operators" queue since the previous handover: line'
    )
    assert run.failure.heading == "the bot handed over to: lawyers"
    # It consumes no message: the bot's words about the hand-over must still be matched.
    run = replay(replayer, MENU + "- press: Talk to a lawyer\n- handover: lawyers\n")
    assert run.failure is not None and "Passing you to a lawyer." in run.failure.sent


def test_handover_line_also_matches_the_notices_after_the_handover(flows: FlowSet) -> None:
    fake = _FakeEngine(
        [
            SendText(ADDRESS, "Passing you on."),
            _handover("lawyers"),
            SendText(ADDRESS, "You are number 3 in the queue."),
        ]
    )
    replayer = Replayer(flows)
    replayer.engine = fake  # type: ignore[assignment]
    assert replay(replayer, "- user: /lawyer\n- bot: Passing\n- handover: lawyers\n").passed


@pytest.mark.parametrize(
    ("now", "expected"),
    [("2026-03-01", "You are 30 or older."), ("2025-03-01", "Your phone?")],
)
def test_now_makes_a_date_branch_deterministic(replayer: Replayer, now: str, expected: str) -> None:
    steps = (
        MENU
        + "- press: I got a summons\n- bot: What kind\n- press: Conscription\n"
        + "- bot: full name\n- user: Ivan Petrov\n- bot: date of birth\n- user: 01.02.1996\n"
        + f"- bot: {expected}\n"
    )
    run = replay(replayer, steps, header=f"language: en\nnow: {now}")
    assert run.passed, run.message()
    # The clock is per transcript: the next one without now: runs on the real clock again.
    assert replayer._clock().year >= 2026 and replayer._now is None


def test_language_is_the_channel_hint_and_commands_switch_it(replayer: Replayer) -> None:
    run = replay(
        replayer,
        """\
        - user: /start
        - bot: Здравствуйте!
          buttons: [Мне пришла повестка, Поговорить с юристом]
        - user: /language en
        - bot: "Language: English."
        - bot: Hello!
        - user: summons
        - bot: What kind of summons?
        """,
        header="language: ru",
    )
    assert run.passed, run.message()


def test_each_transcript_starts_a_fresh_session(replayer: Replayer) -> None:
    first = replay(replayer, MENU + "- press: I got a summons\n- bot: What kind\n")
    second = replay(replayer, "- user: Conscription\n- bot: I did not understand\n- bot: Hello")
    assert first.passed and second.passed, second.message()


# --------------------------------------------------------------------------- documents


class _FakeEngine:
    """Stands in for an Engine: answers every event with exactly these actions."""

    def __init__(self, actions: list) -> None:
        self.actions = actions

    def handle(self, session: object, event: object) -> Outcome:
        return Outcome(None, list(self.actions))

    def key(self, address: object) -> str:
        return "fake"


def _handover(queue: str) -> StartHandover:
    return StartHandover(ADDRESS, queue, HandoverContext("en", (), ()))


def _document_replayer(flows: FlowSet, data: bytes = b"doc") -> Replayer:
    replayer = Replayer(flows)
    replayer.engine = _FakeEngine(  # type: ignore[assignment]
        [SendText(ADDRESS, "Your application:"), SendDocument(ADDRESS, "Application.docx", data)]
    )
    return replayer


def test_document_lines_match_the_file_name(flows: FlowSet) -> None:
    replayer = _document_replayer(flows)
    assert replay(replayer, "- user: go\n- bot: application\n- document: Application.docx\n").passed
    run = replay(replayer, "- user: go\n- bot: application\n- document: Aplication.docx\n")
    assert run.failure is not None
    assert run.failure.sent == ("[document] Application.docx",)
    assert run.failure.diff[:2] == ("- Aplication.docx", "+ Application.docx")
    run = replay(replayer, "- user: go\n- document: Application.docx\n")
    assert run.failure is not None and run.failure.sent == ("Your application:",)
    run = replay(replayer, "- user: go\n- bot: application\n- bot: more\n")
    assert run.failure is not None and run.failure.sent == ("[document] Application.docx",)


def test_document_contains_uses_document_text(
    flows: FlowSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        matching_module, "document_text_function", lambda: lambda data: "Ivanov Ivan\nSamara"
    )
    replayer = _document_replayer(flows)
    steps = "- user: go\n- bot: application\n- document: Application.docx\n"
    assert replay(replayer, steps + "  contains: [Ivanov Ivan, Samara]\n").passed
    run = replay(replayer, steps + "  contains: [Ivanov Ivan, Samra]\n")
    assert run.failure is not None
    assert run.failure.expected == 'expected the document "Application.docx" to contain "Samra"'
    assert run.failure.sent == ("Ivanov Ivan", "Samara")


def test_document_contains_without_text_extraction_fails_clearly(
    flows: FlowSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(matching_module, "document_text_function", lambda: None)
    replayer = _document_replayer(flows)
    run = replay(
        replayer, "- user: go\n- bot: a\n- document: Application.docx\n  contains: [Ivanov]\n"
    )
    assert run.failure is not None
    assert "document text extraction not available" in run.failure.expected


def test_a_document_step_end_to_end_with_a_real_template(tmp_path: Path) -> None:
    docx = pytest.importorskip("docx")
    if matching_module.document_text_function() is None:
        pytest.skip("engine.documents.document_text is not available")
    folder = tmp_path / "flows"
    (folder / "templates").mkdir(parents=True)
    template = docx.Document()
    template.add_paragraph("Application of {{ full_name }}")
    template.save(folder / "templates" / "application.docx")
    (folder / "bot.yaml").write_text("languages: [en]\nmenu: {say: Hi, flows: [apply]}\n")
    (folder / "apply.yaml").write_text(
        textwrap.dedent(
            """\
            flow: apply
            title: Apply
            steps:
              name:
                say: Your name?
                input: {save: full_name, type: text}
                goto: done
              done:
                say: Here it is.
                document: {template: templates/application.docx, name: "{full_name}.docx"}
                end: true
            """
        )
    )
    flows, report = load_folder(folder)
    assert flows is not None, [str(d) for d in report.diagnostics]
    steps = "- user: /start\n- bot: Hi\n- press: Apply\n- bot: Your name?\n- user: Ivan Petrov\n"
    steps += "- bot: Here it is.\n- document: Ivan Petrov.docx\n"
    replayer = Replayer(flows)
    assert replay(replayer, steps + "  contains: [Application of Ivan Petrov]\n").passed
    run = replay(replayer, steps + "  contains: [Application of Petr Ivanov]\n")
    assert run.failure is not None and run.failure.sent == ("Application of Ivan Petrov",)


def test_document_contains_with_the_real_docx_reader(flows: FlowSet) -> None:
    docx = pytest.importorskip("docx")
    import io

    if matching_module.document_text_function() is None:
        pytest.skip("engine.documents.document_text is not available")
    document = docx.Document()
    document.add_paragraph("Заявление: Иванов Иван Иванович")
    out = io.BytesIO()
    document.save(out)
    replayer = _document_replayer(flows, out.getvalue())
    steps = "- user: go\n- bot: a\n- document: Application.docx\n"
    assert replay(replayer, steps + "  contains: [Иванов Иван Иванович]\n").passed
    run = replay(_document_replayer(flows, b"not a docx"), steps + "  contains: [x]\n")
    assert run.failure is not None and "not a readable .docx" in run.failure.expected


# --------------------------------------------------------------------------- failure output


def test_the_failure_output_names_the_line_the_expectation_and_what_was_sent(
    replayer: Replayer,
) -> None:
    run = replay(replayer, MENU, "- press: I got a summons\n- bot: Which summons did you get\n")
    assert run.failure is not None
    lines = str(run.failure).splitlines()
    assert lines[:7] == [
        'FAIL t.yaml:8: expected a bot message containing "Which summons did you get"',
        "  the bot sent:",
        "    What kind of summons?",
        "    [Conscription] [Mobilisation] [Talk to a lawyer]",
        "  diff (- expected, + sent):",
        "    - Which summons did you get",
        "    + What kind of summons?",
    ]
    assert all(line.startswith("    ? ") for line in lines[7:])


def test_a_multi_line_expectation_is_diffed_line_by_line(replayer: Replayer) -> None:
    steps = (
        MENU + "- press: I got a summons\n- bot: What kind\n- press: Conscription\n"
        "- bot: full name\n- user: Ivan Petrov\n- bot: date of birth\n- user: 01.02.1990\n"
        "- bot: |-\n    You are 30 or older.\n    Conscription still applies to you.\n"
    )
    run = replay(replayer, steps, header="language: en\nnow: 2026-03-01")
    assert run.failure is not None
    assert run.failure.diff == (
        "@@ -1,2 +1,2 @@",
        "  You are 30 or older.",
        "- Conscription still applies to you.",
        "+ Conscription no longer applies to you.",
    )


def test_a_long_message_is_diffed_against_its_closest_stretch() -> None:
    from engine.transcripts.matching import _text_diff

    sent = "Take a breath. What kind of summons is it? The purpose is written on it."
    assert _text_diff("What kind of summon is it", sent)[:2] == [
        "- What kind of summon is it",
        "+ What kind of summons is it?",
    ]


def test_a_malformed_transcript_run_prints_its_diagnostics() -> None:
    _, report = parse_transcript("transcript: t\nsteps: []\n", "x.yaml", Path("."))
    run = Run.malformed("x.yaml", report)
    assert run.failed and not run.passed
    assert run.message().splitlines() == [
        "FAIL x.yaml: the transcript has errors",
        "x.yaml:2:8: error: steps: the transcript has no steps",
    ]


def test_failure_is_a_plain_value() -> None:
    failure = Failure("a.yaml", 3, "expected X", "the bot sent:", ("Y",))
    assert str(failure) == "FAIL a.yaml:3: expected X\n  the bot sent:\n    Y"


# --------------------------------------------------------------------------- coverage


def test_coverage_counts_steps_and_edges_per_flow(flows: FlowSet, replayer: Replayer) -> None:
    empty = compute_coverage(flows, [])
    # intake 7 steps, contact 2, lawyer 1; edges: 3 choices of kind, 2 arms of age_check.
    assert (empty.steps, empty.steps_reached, empty.edges, empty.edges_reached) == (10, 0, 5, 0)
    assert empty.lowest_percent == 0.0 and len(empty.unreached_steps) == 10

    run = replay(
        replayer,
        MENU
        + "- press: I got a summons\n- bot: What kind\n- press: Conscription\n"
        + "- bot: full name\n- user: Ivan Petrov\n- bot: date of birth\n- user: 01.02.2004\n"
        + "- bot: phone\n- user: +79001234567\n- bot: Thank you\n",
        header="language: en\nnow: 2026-03-01",
    )
    assert run.passed, run.message()
    coverage = compute_coverage(flows, [run])
    assert (coverage.steps_reached, coverage.edges_reached) == (8, 2)
    assert coverage.flows["intake"].steps_reached == 6
    assert coverage.flows["contact"].steps_reached == 2  # the end that returns counts too
    assert coverage.steps_percent == 80.0 and coverage.edges_percent == 40.0
    assert coverage.lowest_percent == 40.0 and coverage.percent == pytest.approx(100 * 10 / 15)
    assert [(u.flow, u.step) for u in coverage.unreached_steps] == [
        ("intake", "too_old"),
        ("lawyer", "start"),
    ]
    edges = {(u.step, u.index, u.kind, u.label, u.target) for u in coverage.unreached_edges}
    assert edges == {
        ("kind", 1, "choice", "Mobilisation", "intake.name"),
        ("kind", 2, "choice", "Talk to a lawyer", "lawyer.start"),
        ("age_check", 0, "arm", "when age(birth_date) >= 30", "intake.too_old"),
    }
    (too_old,) = [u for u in coverage.unreached_steps if u.step == "too_old"]
    assert str(too_old) == f"{flows.flows['intake'].file}:32: step too_old never reached"
    (arm,) = [u for u in coverage.unreached_edges if u.kind == "arm"]
    assert str(arm) == (
        f"{flows.flows['intake'].file}:29: arm 'when age(birth_date) >= 30' of step age_check "
        "(to intake.too_old) never taken"
    )
    assert ("intake", "age_check", 1) in coverage.reached_edges


def test_coverage_accepts_engine_outcomes_and_reaches_100(flows: FlowSet) -> None:
    runs = []
    for born, kind in (("01.02.1990", "Conscription"), ("01.02.2004", "Mobilisation")):
        runs.append(
            replay(
                Replayer(flows),
                MENU
                + f"- press: I got a summons\n- bot: What kind\n- press: {kind}\n"
                + f"- bot: full name\n- user: Ivan Petrov\n- bot: birth\n- user: {born}\n",
                header="language: en\nnow: 2026-03-01",
            )
        )
    outcome = Outcome(None, [], visited=(("lawyer", "start"),), moves=(("intake", "kind", 2),))
    coverage = compute_coverage(flows, [*runs, outcome])
    assert coverage.edges_percent == 100.0
    assert coverage.flows["contact"].steps_reached == 1  # the phone question only
    report = coverage.report()
    assert report[-1] == "coverage: steps 8/10 (80%), edges 5/5 (100%), lowest 80%"
    assert report[:4] == [
        "contact  steps 1/2 (50%)  edges 0/0 (100%)",
        f"  {flows.flows['contact'].file}:8: step done never reached",
        "intake   steps 6/7 (85.7%)  edges 5/5 (100%)",
        f"  {flows.flows['intake'].file}:44: step summary never reached",
    ]


def test_coverage_never_rounds_a_gap_up_to_100() -> None:
    from engine.transcripts.coverage import _percent_text

    assert _percent_text(999 / 10) == "99.9%" and _percent_text(99.96) == "99.9%"
    assert _percent_text(100.0) == "100%" and _percent_text(0.0) == "0%"


def test_a_multi_line_expectation_keeps_the_headline_on_one_line(replayer: Replayer) -> None:
    run = replay(replayer, "- user: /start\n- bot: |-\n    Hello!\n    Goodbye\n")
    assert run.failure is not None
    assert str(run.failure).splitlines()[0] == (
        'FAIL t.yaml:5: expected a bot message containing "Hello!\\nGoodbye"'
    )
