"""`hotline graph` and engine.graph: pictures of flows in Mermaid, DOT and SVG."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from adapters.cli import main
from adapters.commands import graph as graph_command
from engine.checker import check
from engine.graph import (
    build_picture,
    first_words,
    reachable_steps,
    render_dot,
    render_markdown,
    render_mermaid,
)
from engine.loader import load_folder, read_folder
from engine.model import FlowSet

ROOT = Path(__file__).resolve().parent.parent
SEMANTICS = ROOT / "tests" / "data" / "semantics"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' is not installed")

BOT = """\
languages: [en]
menu:
  say: Menu
  flows: [main]
handover:
  people: People
"""

# Every character that Mermaid, DOT or HTML give a meaning to, in a title, a say and a label.
HOSTILE = r"""
flow: main
title: 'Main "quoted" <b>flow</b> #1 [x] & `y` | z \ end'
steps:
  ask:
    say: 'Pick "one" [of] <script>alert(1)</script> #35; & {{x}} | `t`'
    choices:
      - label: 'Yes "sure" <b>bold</b> #quot; | a]b[c -->|x| end'
        goto: done
      - label: "Line\none"
        goto: done
  done:
    say: 'Bye %% not a comment'
    end: true
"""

# `orphan` can never be reached (the checker reports it as an error), `nowhere` is missing.
BROKEN = """\
flow: main
title: Main
steps:
  ask:
    say: Pick one
    choices:
      - label: Done
        goto: done
      - label: Gone
        goto: nowhere
  orphan:
    say: Nobody comes here
    goto: done
  done:
    say: Bye
    end: true
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {"bot.yaml": BOT, **files}.items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def loaded(folder: Path) -> FlowSet:
    flows, report = load_folder(folder)
    assert flows is not None, [str(d) for d in report.diagnostics]
    return flows


def drawn_anyway(folder: Path) -> FlowSet:
    """A folder with errors, drawn from what could be read (as `hotline graph` does)."""
    folder_read = read_folder(folder)
    check(folder_read)
    assert not folder_read.report.ok
    return folder_read.flow_set()


@pytest.fixture(scope="module")
def semantics() -> FlowSet:
    return loaded(SEMANTICS)


def mermaid_labels(text: str) -> list[str]:
    """Every quoted label of a Mermaid text (node, subgraph and edge labels)."""
    return re.findall(r'"([^"\n]*)"', text)


# --------------------------------------------------------------------------- Mermaid


def test_mermaid_draws_steps_choices_arms_calls_jumps_handovers_and_ends(
    semantics: FlowSet,
) -> None:
    text = render_mermaid(semantics, language="en")
    lines = {line.strip() for line in text.splitlines()}
    assert text.startswith("flowchart TB\n")
    expected = [
        # one frame per flow, titled in the chosen language
        'subgraph sg_intake["Intake"]',
        'subgraph sg_contact["Contact"]',
        # shapes: question, typed answer with its variable, condition, call, hand-over, end
        'intake__kind("Which kind?"):::k_choices',
        'intake__name[/"Your name?<br/>→ full_name (text)"/]:::k_input',
        'intake__born[/"{full_name}, date of<br/>birth?<br/>→ birth_date (date)"/]:::k_input',
        'intake__age_check{"age_check"}:::k_branch',
        'intake__contacts[["call: «Contact»"]]:::k_call',
        'lawyer__start{{"Passing you on.<br/>→ Lawyers"}}:::k_handover',
        'intake__finish(["Bye."]):::k_end',
        'contact__done(["end"]):::k_end',
        # choices and arms are labelled edges, the last arm is "else", gotos unlabelled
        'intake__kind -->|"Conscription"| intake__name',
        'intake__kind -->|"Mobilisation"| intake__name',
        'intake__age_check -->|"age(birth_date) #62;= 30"| intake__too_old',
        'intake__age_check -->|"else"| intake__contacts',
        "intake__name --> intake__born",
        "intake__summary --> intake__finish",
        # a call: dashed into the called flow's start, dotted on to the call's goto
        'intake__contacts -.->|"call"| contact__phone',
        'intake__contacts -.->|"when it ends"| intake__summary',
        # a jump: a bold edge to a connector in this frame, and one on into the other frame
        'intake__kind ==>|"Lawyer"| link_intake_lawyer__start',
        "link_intake_lawyer__start ==> lawyer__start",
        # where each flow starts
        "intake___entry --> intake__kind",
    ]
    for line in expected:
        assert line in lines, line
    assert "linkStyle" in text  # jumps, calls and returns are styled apart
    assert 'subgraph legend_["Legend"]' in lines


def test_mermaid_in_russian_titles_labels_and_else(semantics: FlowSet) -> None:
    text = render_mermaid(semantics, language="ru")
    assert 'subgraph sg_intake["Анкета"]' in text
    assert 'intake__kind -->|"Призыв"| intake__name' in text
    assert '-->|"иначе"| intake__contacts' in text
    assert "→ Юристы" in text
    assert "Обозначения" in text


def test_the_default_language_is_the_bots_first(semantics: FlowSet) -> None:
    assert semantics.bot.languages[0] == "en"
    assert render_mermaid(semantics) == render_mermaid(semantics, language="en")


def test_one_flow_draws_stubs_for_the_flows_it_jumps_to_or_calls(semantics: FlowSet) -> None:
    text = render_mermaid(semantics, ["intake"], language="en")
    assert "sg_contact" not in text and "sg_lawyer" not in text
    # a stub beside each step that goes there, like an off-page connector
    assert 'stub_intake__kind_lawyer__start>"↪ Talk to a lawyer"]:::k_stub' in text
    assert 'stub_intake__contacts_contact__phone>"↪ Contact"]:::k_stub' in text
    assert 'intake__kind ==>|"Lawyer"| stub_intake__kind_lawyer__start' in text
    assert 'intake__contacts -.->|"call"| stub_intake__contacts_contact__phone' in text


def test_markdown_has_one_mermaid_block_per_flow(semantics: FlowSet) -> None:
    text = render_markdown(semantics, language="en")
    blocks = re.findall(r"```mermaid\n(.*?)```", text, flags=re.S)
    assert len(blocks) == len(semantics.flows) == 3
    assert all(block.startswith("flowchart TB\n") for block in blocks)
    assert "## Intake" in text and "## Contact" in text
    assert "`intake` · " in text
    assert "**Legend**" in text


def test_hostile_labels_are_escaped_in_mermaid(tmp_path: Path) -> None:
    flows = loaded(write(tmp_path / "f", {"main.yaml": HOSTILE}))
    text = render_mermaid(flows)
    for label in mermaid_labels(text):
        assert not set(label) & set('<>#&`|"\\') or _only_entities(label), label
    assert "<script>" not in text and "<b>" not in text
    assert "#60;script#62;" in text
    assert "#34;sure#34;" in text  # quotes
    assert "#35;quot;" in text  # an authored entity code stays text
    assert "#124;" in text  # the pipe cannot end an edge label
    assert "Line one" in text  # a newline in a label is a space
    assert "%%" not in "\n".join(line for line in text.splitlines() if line.startswith("%%"))
    # the escaping did not break the structure: one edge per choice, quoted
    assert len(re.findall(r'main__ask -->\|"', text)) == 2


def _only_entities(label: str) -> bool:
    """True when every special character of `label` is part of <br/> or a #NN; code."""
    rest = re.sub(r"#\d+;", "", label.replace("<br/>", ""))
    return not set(rest) & set('<>&`|"\\')


def test_mermaid_ids_are_sanitised_and_unique(tmp_path: Path) -> None:
    # flow "a" step "b__c" and flow "a__b" step "c" would both be a__b__c
    folder = write(
        tmp_path / "f",
        {
            "bot.yaml": BOT.replace("[main]", "[a, a__b]"),
            "a.yaml": """\
                flow: a
                title: A
                steps:
                  b__c:
                    say: one
                    end: true
            """,
            "a__b.yaml": """\
                flow: a__b
                title: AB
                steps:
                  c:
                    say: two
                    end: true
            """,
        },
    )
    text = render_mermaid(loaded(folder))
    ids = re.findall(r"^\s+(\w+)\(\[", text, flags=re.M)
    assert len(ids) == len(set(ids)) == 2 + 1  # two ends and the legend's sample
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", i) for i in ids)


# --------------------------------------------------------------------------- DOT and SVG


def test_dot_has_clusters_shapes_and_styles(semantics: FlowSet) -> None:
    text = render_dot(semantics, language="en")
    assert text.startswith("digraph hotline {")
    assert "rankdir=TB" in text and 'fontname="DejaVu Sans"' in text
    assert 'subgraph "cluster_intake"' in text
    assert re.search(r'"intake\.kind" \[shape=box, style="rounded,filled"', text)
    assert re.search(r'"intake\.age_check" \[shape=diamond', text)
    assert re.search(r'"lawyer\.start" \[shape=hexagon', text)
    assert re.search(r'"intake\.finish" \[[^\]]*peripheries=2', text)
    assert re.search(r'"intake\.contacts" \[shape=component', text)
    # the step id in small text, the saved variable in italics
    assert '<FONT POINT-SIZE="8" COLOR="#777777">kind</FONT>' in text
    assert "<I>→ birth_date (date)</I>" in text
    assert re.search(r'"intake\.contacts" -> "contact\.phone" \[label=<call>, style=dashed', text)
    assert re.search(r'"intake\.contacts" -> "intake\.summary" \[[^\]]*style=dotted', text)
    assert re.search(r'"intake\.kind" -> "link:intake>lawyer\.start" \[[^\]]*style=bold', text)
    assert re.search(r'"intake\.age_check" -> "intake\.contacts" \[label=<else>', text)
    assert text.count("{") == text.count("}")


@needs_dot
def test_dot_output_is_accepted_by_graphviz_and_makes_an_svg(semantics: FlowSet) -> None:
    text = render_dot(semantics, language="ru")
    done = subprocess.run(
        ["dot", "-Tsvg"], input=text.encode(), capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert not done.stderr.strip(), done.stderr.decode()  # no warnings either
    svg = ET.fromstring(done.stdout)
    words = " ".join(t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text"))
    for title in ("Анкета", "Контакт", "Юрист", "Обозначения"):
        assert title in words


@needs_dot
def test_hostile_labels_survive_dot_and_come_out_as_text(tmp_path: Path) -> None:
    flows = loaded(write(tmp_path / "f", {"main.yaml": HOSTILE}))
    done = subprocess.run(
        ["dot", "-Tsvg"],
        input=render_dot(flows).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    svg = ET.fromstring(done.stdout)
    words = " ".join(t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text"))
    assert 'Main "quoted" <b>flow</b> #1 [x] & `y` | z \\ end' in words
    assert '"one" [of] <script>' in words
    assert 'Yes "sure" <b>bold</b>' in words
    assert not list(svg.iter("script")) and not list(svg.iter("{http://www.w3.org/2000/svg}b"))


# --------------------------------------------------------------------------- reachability


def test_reachability_follows_menu_calls_returns_and_jumps(semantics: FlowSet) -> None:
    reached = reachable_steps(semantics)
    flows = semantics.flows
    every = {(fid, name) for fid, flow in flows.items() for name in flow.steps}
    assert reached == every  # contact only through the call, lawyer through the menu


def test_an_unreachable_step_stands_out_in_every_format(tmp_path: Path) -> None:
    flows = drawn_anyway(write(tmp_path / "f", {"main.yaml": BROKEN}))
    assert ("main", "orphan") not in reachable_steps(flows)
    picture = build_picture(flows)
    assert picture.nodes["main.orphan"].unreachable
    assert not picture.nodes["main.ask"].unreachable
    assert picture.nodes["missing:main.nowhere"].kind == "missing"

    mermaid = render_mermaid(flows)
    assert re.search(r"^\s+class [\w,]*main__orphan[\w,]* unreachable$", mermaid, flags=re.M)
    assert "classDef unreachable stroke:#d50000" in mermaid
    assert 'missing_main__nowhere["missing: main.nowhere"]:::k_missing' in mermaid
    assert "can never be reached" in mermaid  # the legend says what red means

    dot = render_dot(flows)
    orphan = next(line for line in dot.splitlines() if line.strip().startswith('"main.orphan"'))
    assert 'style="filled,dashed"' in orphan and 'color="#d50000"' in orphan
    ask = next(line for line in dot.splitlines() if line.strip().startswith('"main.ask"'))
    assert "#d50000" not in ask


def test_a_flow_nobody_can_start_is_titled_so(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "f",
        {
            "main.yaml": """\
                flow: main
                title: Main
                steps:
                  done:
                    end: true
            """,
            "lonely.yaml": """\
                flow: lonely
                title: Lonely
                steps:
                  hello:
                    say: Hi
                    end: true
            """,
        },
    )
    flows = loaded(folder)  # only a warning
    picture = build_picture(flows)
    lonely = next(c for c in picture.clusters if c.id == "lonely")
    assert lonely.never_started
    assert not picture.nodes["lonely.hello"].unreachable  # the frame says it, not each step
    assert 'sg_lonely["Lonely (can never be started)"]' in render_mermaid(flows)
    assert "can never be started" in render_dot(flows)


# --------------------------------------------------------------------------- coverage


def test_coverage_colours_unreached_steps_and_edges(semantics: FlowSet) -> None:
    steps = {("intake", "too_old")}
    edges = {("intake", "age_check", 0), ("intake", "kind", 1)}
    picture = build_picture(semantics, unreached_steps=steps, unreached_edges=edges)
    assert picture.nodes["intake.too_old"].uncovered
    assert not picture.nodes["intake.kind"].uncovered
    uncovered = {(e.source, e.target, tuple(e.label)) for e in picture.edges if e.uncovered}
    assert uncovered == {
        ("intake.age_check", "intake.too_old", ("age(birth_date) >= 30",)),
        ("intake.kind", "intake.name", ("Mobilisation",)),
    }

    mermaid = render_mermaid(semantics, unreached_steps=steps, unreached_edges=edges)
    assert re.search(r"class intake__too_old\b[\w,]* uncovered", mermaid)
    assert "no transcript reaches it" in mermaid and "no transcript takes it" in mermaid
    assert re.search(r"^\s+linkStyle [\d,]+ stroke:#d50000", mermaid, flags=re.M)

    dot = render_dot(semantics, unreached_steps=steps, unreached_edges=edges)
    too_old = next(line for line in dot.splitlines() if line.strip().startswith('"intake.too_old"'))
    assert 'fillcolor="#ffcc80"' in too_old
    assert re.search(
        r'"intake\.kind" -> "intake\.name" \[label=<Mobilisation>, color="#d50000"', dot
    )


def test_without_coverage_nothing_is_orange(semantics: FlowSet) -> None:
    assert "#ffcc80" not in render_dot(semantics)
    assert "no transcript" not in render_mermaid(semantics)


# --------------------------------------------------------------------------- labels


def test_first_words_skip_a_leading_aside_and_shorten() -> None:
    assert first_words("Какую повестку вы получили?") == "Какую повестку вы получили?"
    assert first_words("one two three four five six seven") == "one two three four five six…"
    aside = "(This is an illustration, not legal advice.)\nTake a breath, we will go step by step."
    assert first_words(aside) == "Take a breath, we will go…"
    assert first_words("(only an aside)") == "(only an aside)"
    assert first_words("Повестка по мобилизации — это серьёзно", 4) == "Повестка по мобилизации…"


# --------------------------------------------------------------------------- command line


def test_cli_writes_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("out.md", "out.mmd", "out.dot"):
        assert main(["graph", str(SEMANTICS), "-o", str(tmp_path / name), "--lang", "ru"]) == 0
    assert (tmp_path / "out.md").read_text("utf-8").count("```mermaid") == 3
    assert (tmp_path / "out.mmd").read_text("utf-8").startswith("flowchart TB")
    assert (tmp_path / "out.dot").read_text("utf-8").startswith("digraph hotline {")
    assert "Анкета" in (tmp_path / "out.dot").read_text("utf-8")
    assert main(["graph", str(SEMANTICS)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart TB") and 'sg_intake["Intake"]' in out


@needs_dot
def test_cli_writes_an_svg(tmp_path: Path) -> None:
    out = tmp_path / "flows.svg"
    assert main(["graph", str(SEMANTICS), "-o", str(out), "--lang", "ru"]) == 0
    svg = ET.fromstring(out.read_bytes())
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert "Анкета" in out.read_text("utf-8")


def test_cli_svg_without_graphviz_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(graph_command.shutil, "which", lambda name: None)
    assert main(["graph", str(SEMANTICS), "-o", str(tmp_path / "x.svg")]) == 2
    err = capsys.readouterr().err
    assert "Graphviz 'dot' is not installed: apt-get install graphviz" in err
    assert "or use -o out.md" in err
    assert not (tmp_path / "x.svg").exists()


def test_cli_refuses_an_unknown_extension_and_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["graph", str(SEMANTICS), "-o", str(tmp_path / "x.png")]) == 2
    assert "end it with .md, .mmd, .dot or .svg" in capsys.readouterr().err
    assert main(["graph", str(SEMANTICS), "--lang", "de"]) == 2
    assert "no language 'de'" in capsys.readouterr().err


def test_cli_draws_one_flow_file_with_stubs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(SEMANTICS / "intake.yaml")]) == 0
    out = capsys.readouterr().out
    assert "sg_intake" in out and "sg_contact" not in out
    assert "stub_intake__kind_lawyer__start" in out
    assert "stub_intake__contacts_contact__phone" in out


def test_cli_draws_a_broken_folder_but_exits_1_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write(tmp_path / "f", {"main.yaml": BROKEN})
    out = tmp_path / "broken.mmd"
    assert main(["graph", str(folder), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "main.yaml:11:3: error: step 'orphan' can never be reached" in err
    assert re.search(r"error\(s\): fix \S*main\.yaml", err)
    assert re.search(r"class [\w,]*main__orphan[\w,]* unreachable", out.read_text("utf-8"))


def test_cli_with_nothing_readable_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    assert main(["graph", str(folder)]) == 1
    assert "nothing to draw" in capsys.readouterr().err


def test_cli_coverage_from_transcripts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    transcripts = tmp_path / "transcripts"
    transcripts.mkdir()
    (transcripts / "lawyer.yaml").write_text(
        textwrap.dedent(
            """\
            transcript: Straight to a lawyer
            language: en
            steps:
              - user: /start
              - bot: Menu
              - press: Intake
              - bot: Which kind?
              - press: Lawyer
              - bot: Passing you on.
              - bot: A lawyer will answer.
              - handover: lawyers
            """
        ),
        encoding="utf-8",
    )
    out = tmp_path / "coverage.dot"
    args = ["graph", str(SEMANTICS), "-o", str(out), "--coverage-from", str(transcripts)]
    assert main(args) == 0, capsys.readouterr().err
    dot = out.read_text("utf-8")
    line = next(x for x in dot.splitlines() if x.strip().startswith('"intake.name"'))
    assert "#ffcc80" in line  # never reached
    line = next(x for x in dot.splitlines() if x.strip().startswith('"intake.kind" ['))
    assert "#ffcc80" not in line  # reached
    assert re.search(
        r'"intake\.kind" -> "intake\.name" \[label=<Conscription>, color="#d50000"', dot
    )
    assert "no transcript<BR/>reaches it" in dot  # the legend
    assert "coverage from 1 transcript(s)" in capsys.readouterr().err

    assert main(["graph", str(SEMANTICS), "--coverage-from", str(tmp_path / "none")]) == 2
    assert "no such folder of transcripts" in capsys.readouterr().err


@pytest.mark.parametrize(
    "folder",
    [ROOT / "flows", *sorted(p for p in (ROOT / "tests" / "data").iterdir() if p.is_dir())],
    ids=lambda p: p.name,
)
def test_reachability_agrees_with_the_checker(folder: Path) -> None:
    folder_read = read_folder(folder)
    check(folder_read)
    if folder_read.bot is None:
        pytest.skip(f"{folder.name} has no bot.yaml")
    said = {
        (Path(d.file).resolve(), d.message.split("'")[1])
        for d in folder_read.report.errors
        if "can never be reached" in d.message
    }
    flows = folder_read.flow_set()
    reached = reachable_steps(flows)
    entered = {flow for flow, _ in reached}
    drawn = {
        (Path(flow.file).resolve(), name)
        for fid, flow in flows.flows.items()
        if fid in entered
        for name in flow.steps
        if (fid, name) not in reached
    }
    assert drawn == said


def test_reachability_agrees_with_the_checker_on_a_broken_folder(tmp_path: Path) -> None:
    test_reachability_agrees_with_the_checker(write(tmp_path / "f", {"main.yaml": BROKEN}))
