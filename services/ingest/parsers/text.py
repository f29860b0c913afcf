"""Plain text and Markdown (heading paths tracked, tables kept verbatim)."""

from __future__ import annotations

import re

from services.ingest.parsers.base import (
    Deadline,
    ParsedDocument,
    Section,
    SectionBuilder,
    decode,
    tidy,
)


def parse_text(data: bytes, deadline: Deadline) -> ParsedDocument:
    text = tidy(decode(data))
    return ParsedDocument(sections=(Section(text),) if text else ())


_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_RULE = re.compile(r"^\s{0,3}(?:=+|-{2,}|(?:[-*_]\s*){3,})\s*$")
_LINK_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+")
_QUOTE = re.compile(r"^(\s{0,3}>\s?)+")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_TABLE_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # image -> alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # link -> its text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # reference link
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # autolink
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # strong
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *em*
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),  # _em_, not snake_case
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),  # strikethrough
]


def _strip_inline(line: str) -> str:
    """Remove emphasis and link markup outside code spans; unwrap code spans."""
    out, pos = [], 0
    for match in _CODE_SPAN.finditer(line):
        out.append(_strip_emphasis(line[pos : match.start()]))
        out.append(match.group(2).strip())
        pos = match.end()
    out.append(_strip_emphasis(line[pos:]))
    return "".join(out)


def _strip_emphasis(text: str) -> str:
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text


def _front_matter(lines: list[str]) -> tuple[list[str], str | None]:
    """Drop a leading YAML front-matter block; return its `title:` if present."""
    if not lines or lines[0].strip() != "---":
        return lines, None
    for end in range(1, min(len(lines), 100)):
        if lines[end].strip() in ("---", "..."):
            title = None
            for line in lines[1:end]:
                key, _, value = line.partition(":")
                if key.strip().lower() == "title" and value.strip():
                    title = value.strip().strip("\"'")
            return lines[end + 1 :], title
    return lines, None


class _Markdown:
    """Line-by-line Markdown to plain text; headings open sections."""

    def __init__(self, title: str | None) -> None:
        self.title = title
        self.builder = SectionBuilder()
        self.out: list[str] = []  # lines of the current section's body
        self.fence: str | None = None
        self.table = False

    def heading(self, level: int, text: str) -> None:
        self.builder.paragraph("\n".join(self.out))
        self.out = []
        if self.title is None and level == 1 and text:
            self.title = text
        if text:
            self.builder.heading(level, text)

    def line(self, line: str, following: str) -> None:
        opener = _FENCE.match(line)
        if self.fence is not None:
            if opener and opener.group(1)[0] == self.fence[0] and len(
                opener.group(1)
            ) >= len(self.fence):
                self.fence = None
            else:
                self.out.append(line)  # code is kept verbatim
            return
        if self.table and "|" in line and line.strip():
            self.out.append(line.strip())  # tables are kept verbatim
            return
        if self.table:
            self.table = False
            self.out.append("")  # the table stays a paragraph of its own
        if opener:
            self.fence = opener.group(1)
        elif "|" in line and "|" in following and _TABLE_DELIMITER.match(following):
            self.table = True
            self.out.extend(["", line.strip()])
        elif _LINK_DEF.match(line):
            return
        elif _RULE.match(line):
            self._rule(line)
        elif heading := _ATX.match(line):
            self.heading(len(heading.group(1)), _strip_inline(heading.group(2)))
        else:
            self.out.append(_strip_inline(_QUOTE.sub("", line)))

    def _rule(self, line: str) -> None:
        """A setext underline after a one-line paragraph makes it a heading; else a break."""
        previous = self.out[-1].strip() if self.out else ""
        before = self.out[-2].strip() if len(self.out) > 1 else ""
        underline = _SETEXT.match(line)
        if underline and previous and not before and not previous.startswith(("-", "*", "+")):
            self.out.pop()
            self.heading(1 if underline.group(1)[0] == "=" else 2, previous)
        else:
            self.out.append("")


def parse_markdown(data: bytes, deadline: Deadline) -> ParsedDocument:
    lines, title = _front_matter(tidy(decode(data)).split("\n"))
    state = _Markdown(title)
    for index, line in enumerate(lines):
        if index % 5000 == 0:
            deadline.check()
        state.line(line, lines[index + 1] if index + 1 < len(lines) else "")
    state.builder.paragraph("\n".join(state.out))
    state.builder.flush()
    return ParsedDocument(sections=tuple(state.builder.sections), title=state.title or None)
