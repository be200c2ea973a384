"""Documents: a lawyer's Word template filled in with one conversation's answers.

A flow step may carry `document: {template: templates/x.docx, name: {...}}`. The template is
an ordinary .docx written in Word, with docxtpl's Jinja placeholders (`{{ full_name }}`,
`{% if ... %}`, `{%p if ... %}` for whole paragraphs). The engine sends the filled document
right after the step's `say`, as its own message (`SendDocument`).

What a template can use
- every saved answer, by its name (`{{ full_name }}`); dates are dates, numbers numbers;
- `today` (the date of the conversation) and `lang` (the person's language, e.g. 'ru');
- the filters `date` and `longdate`, which write a date the way the person's language does:
  `{{ birth_date|date }}` is 01.02.2004 in Russian and "1 February 2004" in English;
  `{{ today|longdate }}` is "25 ноября 2026 г." in Russian and "25 November 2026" in English;
- `acs_deadline(callup)` and `acs_callup_year(callup)`: see `acs_deadline` below.
A value printed without a filter is already readable: a date as `date` writes it, 3.0 as 3,
a yes/no as да/нет or yes/no, nothing at all as a blank line to fill in by hand.

One template per language: a `{lang}` in the template path is replaced by the person's
language, so `templates/acs_application_{lang}.docx` means `acs_application_ru.docx` for
Russian speakers and `acs_application_en.docx` for English ones; `hotline check` demands a
file for every language of bot.yaml. A path without `{lang}` serves every language (the
template may then branch on `lang`).

Safety: answers are data, never template source. They are put into the Jinja context and
printed; nothing a person types is ever compiled, so `{{ 7*7 }}` typed into a chat stays
`{{ 7*7 }}` in the document. The Jinja environment is sandboxed (`ImmutableSandboxedEnvironment`)
and escapes every printed value for XML, so `<`, `&` and quotes cannot break the document.
Before rendering, every text value loses the characters XML cannot carry (control
characters; docxtpl would also turn \\a and \\f into new paragraphs and page breaks) and is
cut to `MAX_VALUE_CHARS`; the output of each part is parsed strictly before it is kept.

Speed: docxtpl re-opens the template package and re-writes every part of it on every
render (~35 ms). `DocxRenderer` prepares each template once (docxtpl's own discovery and
patching of the parts, compiled in the same environment) and per document only renders those
parts, applies docxtpl's after-rendering steps and zips them with the template's other
members (~2 ms); see `_prepare` and `_fill`. Tests hold it to docxtpl's path, byte for byte
in the rendered parts.

Errors: `DocumentError` says which template and what went wrong, never an answer; the
runtime logs only its `kind`. The checker uses `check_template`, `template_variables` and
`document_uses`; transcripts read a sent document with `document_text`.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import re
import threading
import zipfile
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the heavy libraries are imported on first use, not with the engine
    from jinja2 import Environment

    from engine.model import Step


LANG = "{lang}"
# A text answer is capped at input time (2000 characters unless the flow says otherwise,
# 4000 for the ACS reasons); this second cap at render time keeps any value, however it
# got into the session, from bloating a document.
MAX_VALUE_CHARS = 5000
MAX_LIST_ITEMS = 100
MAX_FILE_NAME = 120
BLANK = "____________________"

# Names a template may use that are not answers.
HELPERS = frozenset({"today", "lang", "acs_deadline", "acs_callup_year"})
FILTERS = frozenset({"date", "longdate"})

# XML 1.0 allows tab, newline, carriage return and most of Unicode; everything else
# (other C0 controls, lone surrogates, U+FFFE/U+FFFF) would make the .docx unreadable.
_XML_INVALID = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")
_UNSAFE_IN_FILE_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
_PARAGRAPH_START = re.compile(r"<w:p([ >])")
_TAG = re.compile(r"<[^>]+>")

_MONTHS_RU = (
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
)
_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_YES_NO = {"ru": ("да", "нет"), "en": ("yes", "no")}


class DocumentError(Exception):
    """A document could not be made. `kind` is short and safe to log; the message names
    the template and the problem but never a value from a conversation."""

    def __init__(self, message: str, kind: str = "render") -> None:
        super().__init__(message)
        self.kind = kind


# --------------------------------------------------------------------------- dates


def acs_deadline(callup: object, today: dt.date) -> dt.date | None:
    """The next deadline for an application to replace military service with ACS.

    Federal Law No. 113-FZ, Article 11(1): the application is filed with the military
    commissariat where the person is registered
    - *before 1 April* by those to be called up in October-December of the same year
      (the autumn call-up, which runs 1 October - 31 December);
    - *before 1 October* by those to be called up in April-July of the following year
      (the spring call-up).
    So `callup` 'spring' gives the next 1 October and 'autumn' the next 1 April, counted
    from `today`. "Before" excludes the date itself: the last day to file is the day
    before the date returned (30 September, 31 March), and on 1 October or 1 April itself
    that year's deadline has passed, so the next year's date is returned. Write it as
    «до {{ acs_deadline(callup)|longdate }}» / "before ...".

    The date returned serves the call-up of `acs_callup_year(callup)`: the spring call-up of
    the following year, or the autumn call-up of the same year. Someone expecting an
    earlier call-up has missed its deadline; DOMAIN.md: a late application must still be
    considered, and a refusal can be appealed in court. Any other `callup` ('unknown',
    empty, missing) gives None, so a template can write both deadlines instead.
    """
    season = str(callup).strip().lower() if callup is not None else ""
    if season == "spring":
        month = 10
    elif season in ("autumn", "fall"):
        month = 4
    else:
        return None
    deadline = dt.date(today.year, month, 1)
    if today >= deadline:
        deadline = dt.date(today.year + 1, month, 1)
    return deadline


def acs_callup_year(callup: object, today: dt.date) -> int | None:
    """The year of the call-up that `acs_deadline(callup, today)` is the deadline for."""
    deadline = acs_deadline(callup, today)
    if deadline is None:
        return None
    return deadline.year + 1 if deadline.month == 10 else deadline.year


def _as_date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
            try:
                return dt.datetime.strptime(text, pattern).date()
            except ValueError:
                continue
    return None


def format_date(value: object, language: str) -> object:
    """`{{ x|date }}`: 01.02.2004 in Russian (and by default), "1 February 2004" in English.
    A value that is not a date is returned unchanged."""
    day = _as_date(value)
    if day is None:
        return value
    if language == "en":
        return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return day.strftime("%d.%m.%Y")


def format_long_date(value: object, language: str) -> object:
    """`{{ x|longdate }}`: "25 ноября 2026 г." in Russian, "25 November 2026" in English."""
    day = _as_date(value)
    if day is None:
        return value
    if language == "ru":
        return f"{day.day} {_MONTHS_RU[day.month - 1]} {day.year} г."
    if language == "en":
        return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return day.strftime("%d.%m.%Y")


# --------------------------------------------------------------------------- values


def clean_value(value: object) -> object:
    """An answer made safe to print into a document: XML-invalid characters removed,
    line ends normalised, long runs of blank lines shortened, length capped."""
    if isinstance(value, str):
        text = value.replace("\r\n", "\n").replace("\r", "\n")
        text = _XML_INVALID.sub("", text)
        text = _MANY_BLANK_LINES.sub("\n\n", text)
        if len(text) > MAX_VALUE_CHARS:
            text = text[: MAX_VALUE_CHARS - 1].rstrip() + "…"
        return text
    if value is None or isinstance(value, bool | int | float | dt.date):
        return value
    if isinstance(value, list | tuple):
        return tuple(clean_value(item) for item in value[:MAX_LIST_ITEMS])
    return clean_value(str(value))


def _context(answers: Mapping[str, object], language: str, today: dt.date) -> dict[str, Any]:
    context: dict[str, Any] = {str(k): clean_value(v) for k, v in answers.items()}
    # Helpers win over answers of the same name: an answer never replaces a function.
    context.update(
        today=today,
        lang=language,
        acs_deadline=lambda callup: acs_deadline(callup, today),
        acs_callup_year=lambda callup: acs_callup_year(callup, today),
    )
    return context


def safe_file_name(name: str, extension: str = ".docx") -> str:
    """A file name that is safe on every channel and file system: no path separators or
    control characters, no leading dots, not too long, ending in `extension`."""
    name = _UNSAFE_IN_FILE_NAME.sub("_", _XML_INVALID.sub("", name)).strip().lstrip(".").strip()
    stem = name[: -len(extension)] if name.lower().endswith(extension) else name
    stem = stem.strip().rstrip(".") or "document"
    return stem[: MAX_FILE_NAME - len(extension)].rstrip() + extension


# --------------------------------------------------------------------------- Jinja


@lru_cache(maxsize=16)
def environment(language: str) -> Environment:
    """The sandboxed, XML-escaping Jinja environment for one language (shared, read-only).

    It also remembers compiled templates by their source text: the checker and docxtpl's
    own path (`_render_docx_slow`) hand it the same (patched) XML of a template on every
    render, and compiling is the costly part. `DocxRenderer` compiles each template once
    (`_prepare`) and keeps the compiled parts itself."""
    from jinja2 import Undefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from markupsafe import Markup

    class Blank(Undefined):
        """A value the conversation does not have: a line to fill in by hand."""

        __slots__ = ()

        def __str__(self) -> str:
            return BLANK

    class CachingSandbox(ImmutableSandboxedEnvironment):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self._compiled: OrderedDict[str, Any] = OrderedDict()
            self._lock = threading.Lock()

        def from_string(self, source: Any, globals: Any = None, template_class: Any = None):
            if globals or template_class or not isinstance(source, str):
                return super().from_string(source, globals, template_class)
            with self._lock:
                found = self._compiled.get(source)
                if found is not None:
                    self._compiled.move_to_end(source)
                    return found
            compiled = super().from_string(source)
            with self._lock:
                self._compiled[source] = compiled
                while len(self._compiled) > 64:
                    self._compiled.popitem(last=False)
            return compiled

    yes, no = _YES_NO.get(language, _YES_NO["en"])

    def finalize(value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, bool):
            return yes if value else no
        if isinstance(value, dt.date):
            return format_date(value, language)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and not isinstance(value, Markup):
            return _XML_INVALID.sub("", value)
        return value

    env = CachingSandbox(autoescape=True, undefined=Blank, finalize=finalize)
    env.filters["date"] = lambda value: format_date(value, language)
    env.filters["longdate"] = lambda value: format_long_date(value, language)
    return env


@lru_cache(maxsize=1)
def _strict_template_class() -> type:
    """docxtpl's DocxTemplate, made strict: every rendered part must be well-formed XML
    (docxtpl itself repairs broken XML silently, losing text)."""
    from docxtpl import DocxTemplate

    class StrictDocxTemplate(DocxTemplate):
        def render_xml_part(self, src_xml, part, context, jinja_env=None):  # type: ignore[override]
            xml = super().render_xml_part(src_xml, part, context, jinja_env)
            _check_xml(xml)
            return xml

    return StrictDocxTemplate


class _BrokenXml(Exception):
    pass


def _check_xml(xml: str) -> None:
    """Refuse a rendered part that is not well-formed XML (docxtpl would repair it)."""
    from lxml import etree

    try:
        etree.fromstring(xml.encode("utf-8"))
    except etree.XMLSyntaxError as err:
        raise _BrokenXml(_text_before(xml, *err.position)) from None


def _text_before(xml: str, line: int, column: int) -> str:
    """The document text just before where the XML broke, to say where in words."""
    lines = xml.splitlines()
    if not 0 < line <= len(lines):
        return ""
    text = " ".join(_TAG.sub(" ", lines[line - 1][: max(column, 0)]).split())
    return f"after {text[-60:]!r}" if text else "at the start"


# --------------------------------------------------------------------------- rendering


class DocumentRenderer(ABC):
    """The seam between the runtime and document making (one small ABC, STYLE.md)."""

    @abstractmethod
    def render(
        self, template: str, answers: Mapping[str, object], language: str, today: dt.date
    ) -> bytes:
        """The filled document for `template` (a path relative to the flows folder, which
        may contain `{lang}`), or DocumentError. `answers` are data, never template source;
        nothing is written to disk."""


class DocxRenderer(DocumentRenderer):
    """Renders .docx templates of one flows folder, in memory.

    Each template is prepared once per language (see `_prepare`) and kept, keyed by its
    path, until the file changes (its modification time or size); a template deleted after
    its first use keeps being served from memory. The prepared data is immutable, so
    renders in several threads at once share it; only filling the cache takes the lock.
    A new flows folder means a new renderer."""

    __slots__ = ("_lock", "_prepared", "folder")

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._prepared: dict[tuple[Path, str], _Entry] = {}  # (file, language) -> entry
        self._lock = threading.Lock()

    def path(self, template: str, language: str) -> Path:
        return resolve_template(self.folder, template, language)

    def _get(self, path: Path, language: str) -> _Prepared:
        key = (path, language)
        entry = self._prepared.get(key)  # a plain read: entries are replaced, never changed
        if entry is None or not _current(entry, _stamp(path)):
            with self._lock:
                stamp = _stamp(path)
                entry = self._prepared.get(key)
                if entry is None or not _current(entry, stamp):
                    entry = (stamp, _prepare_file(path, language))
                    self._prepared[key] = entry
        prepared = entry[1]
        if isinstance(prepared, tuple):  # a broken template is not prepared again until it changes
            raise DocumentError(*prepared)
        return prepared

    def render(
        self, template: str, answers: Mapping[str, object], language: str, today: dt.date
    ) -> bytes:
        path = self.path(template, language)
        prepared = self._get(path, language)
        with _errors(path.name):
            return _fill(prepared, answers, language, today)


_Entry = tuple[tuple[int, int], "_Prepared | tuple[str, str]"]  # (_stamp, prepared or error)


def _current(entry: _Entry, stamp: tuple[int, int]) -> bool:
    """Whether a cached template still serves: its file is unchanged, or gone (a template
    deleted after its first use keeps being served from memory)."""
    return entry[0] == stamp or stamp == _NO_FILE


def _prepare_file(path: Path, language: str) -> _Prepared | tuple[str, str]:
    """The prepared template, or (message, kind) of why it cannot be; DocumentError when
    the file cannot be read (nothing is kept then)."""
    try:
        blob = path.read_bytes()
    except OSError as err:
        raise DocumentError(
            f"{path.name}: cannot read the template ({err.strerror})", "missing"
        ) from None
    try:
        with _errors(path.name):
            return _prepare(blob, language)
    except DocumentError as err:
        return (str(err), err.kind)


def render_docx(
    blob: bytes,
    answers: Mapping[str, object],
    language: str,
    today: dt.date,
    name: str = "template",
    explain: bool = False,
) -> bytes:
    """Fill the .docx template `blob`; the filled .docx as bytes (nothing touches a disk).
    The same work as `DocxRenderer.render`, without keeping the prepared template."""
    with _errors(name, explain):
        return _fill(_prepare(blob, language), answers, language, today)


@contextmanager
def _errors(name: str, explain: bool = False) -> Iterator[None]:
    """Any failure to make a document, as DocumentError (never showing a value)."""
    from jinja2 import TemplateError

    try:
        yield
    except DocumentError:
        raise
    except _BrokenXml as err:
        # Where it broke is shown only for the checker's sample answers, never for real ones.
        where = f" ({err})" if explain else ""
        raise DocumentError(f"{name}: the filled document is not valid XML{where}", "xml") from None
    except TemplateError as err:
        raise DocumentError(f"{name}: {type(err).__name__}", "template") from None
    except Exception as err:  # a damaged file, an error inside an expression, ...
        raise DocumentError(f"{name}: {type(err).__name__}", "render") from None


# How a template is filled. docxtpl (`DocxTemplate.render` + `save`) opens the whole package
# with python-docx, patches and compiles the XML, renders it, and re-serialises and deflates
# every part on every call: ~35 ms a document. The same steps, split in two:
# - `_prepare`, once per template and language: open it with python-docx and docxtpl (so
#   they find the parts and patch the XML exactly as they do when rendering), compile each
#   templated part in the sandboxed environment, and zip every other member once;
# - `_fill`, per document (~2 ms): render each part and apply what docxtpl does after Jinja
#   (its `render_xml_part`, `fix_tables`, `fix_docpr_ids`, the re-parse of headers and
#   footers, python-docx's serialisation), check the XML strictly, and append the parts to a
#   copy of the prepared zip (so they come last in it). Other members are the template's own
#   bytes, where docxtpl's path writes python-docx's re-serialisation of some of them.
# `_render_docx_slow` is docxtpl's own path, kept for tests that compare the two (and used
# for a template whose core properties carry Jinja, which docxtpl renders too).
_BODY, _HEADER, _FOOTNOTES = "body", "header", "footnotes"
_NO_FILE = (0, -1)  # _stamp of a file that cannot be stat'ed
# The core properties docxtpl renders (DocxTemplate.render_properties).
_CORE_PROPERTIES = ("author", "comments", "identifier", "language", "subject", "title")
_JINJA_START = re.compile(r"\{[{%#]")
_NEW_PARAGRAPH = re.compile(r"<w:p([ >])")
_NEWLINE_PARAGRAPH = re.compile(r"\n<w:p([ >])")
_LISTING_CHARACTERS = re.compile("[\t\a\n\f]")  # what DocxTemplate.resolve_listing replaces
_LISTING_PARAGRAPH = re.compile(r"<w:p(?: [^>]*)?>.*?</w:p>", re.DOTALL)  # ... and where
_FOOTNOTES_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
_W_BODY = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}body"
_COMPRESS_LEVEL = 1  # for the rendered parts: 0.2 ms less than the default, 2% larger


@dataclass(frozen=True, slots=True)
class _Part:
    """One templated part of a template: its zip member and compiled Jinja template."""

    member: str
    kind: str  # _BODY (word/document.xml), _HEADER (headers and footers) or _FOOTNOTES
    template: Any
    date_time: tuple[int, int, int, int, int, int]
    encoding: str = "utf-8"


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A template ready to fill: immutable, shared by every render (and thread)."""

    parts: tuple[_Part, ...]
    shell: bytes  # word/document.xml with an empty <w:body/>, for the rendered body
    base: bytes  # a zip of every member that is not rendered, compressed once
    slow: bytes | None = None  # the template itself, when only docxtpl's path will do


def _prepare(blob: bytes, language: str) -> _Prepared:
    """Everything about filling `blob` that does not depend on the answers."""
    from docxtpl import DocxTemplate
    from lxml import etree

    env = environment(language)
    source = DocxTemplate(io.BytesIO(blob))
    source.init_docx()
    document = source.docx
    properties = document.core_properties
    if any(_JINJA_START.search(getattr(properties, p) or "") for p in _CORE_PROPERTIES):
        return _Prepared((), b"", b"", slow=blob)

    found: list[tuple[str, str, str, str]] = []  # (member, kind, patched XML, encoding)
    found.append((document.part.partname.membername, _BODY, source.get_xml(), "utf-8"))
    for uri in (source.HEADER_URI, source.FOOTER_URI):
        for _, part in source.get_headers_footers(uri):
            xml = source.get_part_xml(part)
            encoding = source.get_headers_footers_encoding(xml)
            found.append((part.partname.membername, _HEADER, xml, encoding))
    # docxtpl renders footnotes once per section, each time from the previous output, so
    # with two sections an answer printed in a footnote would be compiled as template
    # source; here they are rendered once (and, like docxtpl, not at all without sections).
    if document.sections:
        for part in document.part.package.parts:
            if part.content_type == _FOOTNOTES_TYPE:
                data = part.blob
                xml = data.decode("utf-8") if isinstance(data, bytes) else data
                found.append((part.partname.membername, _FOOTNOTES, xml, "utf-8"))

    shell = copy.deepcopy(document.element)
    body = shell.find(_W_BODY)
    for child in list(body):
        body.remove(child)

    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        members = archive.infolist()
        dates = {info.filename: info.date_time for info in members}
        rendered = {member for member, *_ in found}
        base = io.BytesIO()
        with zipfile.ZipFile(base, "w") as out:
            for info in members:
                if info.filename in rendered:
                    continue
                copied = zipfile.ZipInfo(info.filename, info.date_time)
                copied.external_attr = info.external_attr
                if info.compress_type != zipfile.ZIP_STORED:
                    copied.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(copied, archive.read(info))

    parts: list[_Part] = []
    for member, kind, xml, encoding in found:
        if member in (p.member for p in parts):
            continue
        code = _NEW_PARAGRAPH.sub(r"\n<w:p\1", source.patch_xml(xml))
        date_time = dates.get(member, (1980, 1, 1, 0, 0, 0))
        parts.append(_Part(member, kind, env.from_string(code), date_time, encoding))
    return _Prepared(tuple(parts), etree.tostring(shell), base.getvalue())


def _fill(
    prepared: _Prepared, answers: Mapping[str, object], language: str, today: dt.date
) -> bytes:
    """The document: each part rendered with the answers, the rest as prepared."""
    if prepared.slow is not None:
        return _docxtpl_render(prepared.slow, answers, language, today)
    from docx.opc.oxml import serialize_part_xml
    from docx.oxml.parser import parse_xml
    from docxtpl import DocxTemplate
    from lxml import etree

    context = _context(answers, language, today)
    tool = DocxTemplate(None)  # docxtpl's helpers, and its docPr counter for this document
    tool.docx_ids_index = 1000
    out = io.BytesIO(prepared.base)
    with zipfile.ZipFile(out, "a") as archive:
        for part in prepared.parts:
            # What DocxTemplate.render_xml_part does after Jinja (docxtpl 0.20).
            xml = _NEWLINE_PARAGRAPH.sub(r"<w:p\1", part.template.render(context))
            xml = xml.replace("{_{", "{{").replace("}_}", "}}")
            xml = _resolve_listing(tool, xml.replace("{_%", "{%").replace("%_}", "%}"))
            _check_xml(xml)
            if part.kind == _BODY:  # DocxTemplate.render, map_tree and python-docx's save
                tree = tool.fix_tables(xml)
                tool.fix_docpr_ids(tree)
                root = etree.fromstring(prepared.shell)
                root.replace(root.find(_W_BODY), tree)
                data = serialize_part_xml(root)
            elif part.kind == _HEADER:  # map_headers_footers_xml (XmlPart.load) and save
                data = serialize_part_xml(parse_xml(xml.encode(part.encoding)))
            else:  # render_footnotes keeps the text as the part's blob
                data = xml.encode("utf-8")
            info = zipfile.ZipInfo(part.member, part.date_time)
            archive.writestr(info, data, zipfile.ZIP_DEFLATED, _COMPRESS_LEVEL)
    return out.getvalue()


def _resolve_listing(tool: Any, xml: str) -> str:
    """`DocxTemplate.resolve_listing(xml)` (tabs, new lines, \\a and \\f in text become Word's
    tabs, breaks, paragraphs and page breaks), run only on the paragraphs it changes: it
    works paragraph by paragraph (`_LISTING_PARAGRAPH`, its pattern) and leaves one without
    those characters as it is. The same result, without ~20 µs for every other paragraph."""
    if not _LISTING_CHARACTERS.search(xml):
        return xml

    def paragraph(match: re.Match[str]) -> str:
        text = match.group(0)
        return tool.resolve_listing(text) if _LISTING_CHARACTERS.search(text) else text

    return _LISTING_PARAGRAPH.sub(paragraph, xml)


def _render_docx_slow(
    blob: bytes,
    answers: Mapping[str, object],
    language: str,
    today: dt.date,
    name: str = "template",
    explain: bool = False,
) -> bytes:
    """docxtpl's own path (DocxTemplate.render and save): what `_fill` must match."""
    with _errors(name, explain):
        return _docxtpl_render(blob, answers, language, today)


def _docxtpl_render(
    blob: bytes, answers: Mapping[str, object], language: str, today: dt.date
) -> bytes:
    document = _strict_template_class()(io.BytesIO(blob))
    document.render(
        _context(answers, language, today), jinja_env=environment(language), autoescape=True
    )
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def resolve_template(folder: str | Path, template: str, language: str) -> Path:
    """The file behind `template` for `language`; refuses paths outside the folder."""
    root = Path(folder).resolve()
    relative = template.replace(LANG, language)
    path = (root / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(root):
        raise DocumentError(f"{template}: a template must be inside the flows folder", "path")
    return path


def template_files(
    folder: str | Path, template: str, languages: Iterable[str] | None = None
) -> dict[str, Path]:
    """language -> file for `template`. Without `languages`, a `{lang}` path is matched
    against the files that exist (`{lang}` standing for the same 2- or 3-letter code
    wherever it appears); a plain path maps to itself under the key '*'."""
    if LANG not in template:
        return {"*": resolve_template(folder, template, "")}
    if languages is not None:
        return {lang: resolve_template(folder, template, lang) for lang in languages}
    root = Path(folder).resolve()
    resolve_template(root, template, "xx")  # refuses a path outside the folder
    first, after, *more = template.split(LANG)
    pattern = re.escape(first) + r"([a-z]{2,3})" + re.escape(after)
    pattern += "".join(r"\1" + re.escape(part) for part in more)
    found: dict[str, Path] = {}
    for path in sorted(root.glob(template.replace(LANG, "*"))):
        match = re.fullmatch(pattern, path.relative_to(root).as_posix())
        if match and path.is_file():
            found[match.group(1)] = path
    return found


# --------------------------------------------------------------------------- checking


def _open(path: Path) -> Any:
    """A DocxTemplate for `path`, or DocumentError('... is not a Word .docx file')."""
    try:
        blob = Path(path).read_bytes()
    except OSError as err:
        raise DocumentError(f"{path.name}: cannot read it ({err.strerror})", "missing") from None
    try:
        from docx import Document

        Document(io.BytesIO(blob))
    except Exception:
        raise DocumentError(
            f"{path.name} is not a Word .docx file (save it in Word as .docx)", "docx"
        ) from None
    document = _strict_template_class()(io.BytesIO(blob))
    document.init_docx()
    return document


def _parts(document: Any) -> list[tuple[str, str]]:
    """(what, patched XML with one line per paragraph) for the body, headers and footers."""
    from docx.oxml import parse_xml

    parts = [("", document.patch_xml(document.get_xml()))]
    for uri, word in ((document.HEADER_URI, "header"), (document.FOOTER_URI, "footer")):
        for index, (_, part) in enumerate(document.get_headers_footers(uri), 1):
            xml = document.xml_to_string(parse_xml(part.blob))
            parts.append((f"{word} {index}, ", document.patch_xml(xml)))
    return [(what, _PARAGRAPH_START.sub(r"\n<w:p\1", xml)) for what, xml in parts]


def _where(what: str, xml: str, line: int | None) -> str:
    """Where a line of `_parts` XML is, e.g. "paragraph 12 ('Прошу {{ …')". Line 1 precedes
    the first paragraph; each further line is one paragraph, counting those in tables."""
    if not line:
        return what.rstrip(", ")
    lines = xml.splitlines()
    text = _TAG.sub("", lines[line - 1]).strip() if 0 < line <= len(lines) else ""
    snippet = f" ({text[:60]!r})" if text else ""
    return f"{what}paragraph {max(line - 1, 1)}{snippet}"


@lru_cache(maxsize=128)
def _check_cached(path: Path, stamp: tuple[int, int]) -> tuple[tuple[str, ...], frozenset[str]]:
    from jinja2 import TemplateSyntaxError, meta

    name = path.name
    try:
        document = _open(path)
    except DocumentError as err:
        return (str(err),), frozenset()
    problems: list[str] = []
    variables: set[str] = set()
    env = environment("ru")
    for what, xml in _parts(document):
        try:
            variables |= meta.find_undeclared_variables(env.parse(xml))
            env.from_string(xml)  # also finds unknown filters and tests
        except TemplateSyntaxError as err:
            problems.append(f"{name}, {_where(what, xml, err.lineno)}: {err.message}")
    if not problems:
        # Fill it twice, once with every value present and once with every value empty,
        # so that tags which break Word's structure in either branch are found.
        blob = path.read_bytes()
        for sample in ("Образец / sample", ""):
            answers = dict.fromkeys(variables - HELPERS, sample)
            try:
                render_docx(blob, answers, "ru", dt.date(2026, 1, 15), name, explain=True)
            except DocumentError as err:
                if err.kind == "xml":
                    problems.append(
                        f"{err}: a {{% if %}} or {{% for %}} probably starts in one paragraph "
                        "and ends in another; use {%p ... %} on paragraphs of their own"
                    )
                    break
    return tuple(problems), frozenset(variables)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (0, -1)
    return (info.st_mtime_ns, info.st_size)


def check_template(path: str | Path) -> list[str]:
    """Every problem with the template file: missing, not a .docx, bad Jinja syntax (with the
    paragraph), unknown filters, tags that leave Word's XML broken. Empty when it is fine."""
    path = Path(path)
    if not path.is_file():
        return [f"{path.name} does not exist (looked for {path})"]
    return list(_check_cached(path.resolve(), _stamp(path))[0])


def template_variables(path: str | Path) -> set[str]:
    """Every name the template reads from its context: answers and helpers (`today`, ...).
    DocumentError when the file is missing or broken (see `check_template` for why)."""
    path = Path(path)
    if not path.is_file():
        raise DocumentError(f"{path.name} does not exist", "missing")
    problems, variables = _check_cached(path.resolve(), _stamp(path))
    if problems and not variables:
        raise DocumentError(problems[0], "template")
    return set(variables)


def document_uses(
    step: Step, folder: str | Path, languages: Iterable[str] | None = None
) -> list[str]:
    """The answers a step's document reads (helpers left out), sorted; for the data-flow
    check. With `{lang}` in the path, the union over every language's template. Missing or
    broken templates contribute nothing: `check_template` reports those."""
    if step.document is None:
        return []
    names: set[str] = set()
    try:
        files = template_files(folder, step.document.template, languages)
    except DocumentError:
        return []
    for path in files.values():
        try:
            names |= template_variables(path)
        except DocumentError:
            continue
    return sorted(names - HELPERS)


# --------------------------------------------------------------------------- reading


def document_text(data: bytes) -> str:
    """The text of a .docx: body paragraphs and tables in order (cells separated by tabs,
    rows by new lines), then headers and footers. ValueError when it is not a .docx."""
    from docx import Document

    try:
        document = Document(io.BytesIO(data))
    except Exception as err:
        raise ValueError(f"not a .docx document ({type(err).__name__})") from None
    lines: list[str] = []
    _container_text(document, lines)
    seen: set[str] = set()
    for section in document.sections:
        for part in (section.header, section.footer):
            if part.is_linked_to_previous or str(part.part.partname) in seen:
                continue
            seen.add(str(part.part.partname))
            _container_text(part, lines)
    return "\n".join(lines)


def _container_text(container: Any, lines: list[str]) -> None:
    from docx.table import Table

    for block in container.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells: list[str] = []
                seen: set[int] = set()
                for cell in row.cells:
                    if id(cell._tc) in seen:  # a merged cell appears once per grid column
                        continue
                    seen.add(id(cell._tc))
                    inner: list[str] = []
                    _container_text(cell, inner)
                    cells.append("\n".join(inner))
                lines.append("\t".join(cells))
        else:
            lines.append(block.text)
