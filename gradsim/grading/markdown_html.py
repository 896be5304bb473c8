"""A small, safe Markdown-to-HTML renderer for exercise texts on feedback pages.

Why not a Markdown library: none is a dependency, and exercise texts use a
small subset (paragraphs, ``#`` headings, numbered and bulleted lists with
indented continuation lines, ``**bold**``, ``*italic*``, ```code```, and
``[text](https://...)`` links). Safe: every character of the source is
HTML-escaped before any markup is added, so an exercise file cannot inject
tags or scripts, and only http(s) links become links.
"""
from __future__ import annotations

import html
import re

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^\s)\"'<>]+)\)")  # runs on escaped text: no quote can end the href
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_ORDERED = re.compile(r"^\d+[.)]\s+(.*)$")
_BULLET = re.compile(r"^[-*+]\s+(.*)$")


def inline(text: str) -> str:
    """One line's inline markup, on the escaped text (code spans are left as they are)."""
    out = []
    for i, part in enumerate(_CODE.split(text)):
        if i % 2:
            out.append(f"<code>{html.escape(part, quote=False)}</code>")
            continue
        s = html.escape(part, quote=False)
        s = _LINK.sub(lambda m: f'<a href="{m.group(2)}">{m.group(1)}</a>', s)
        s = _BOLD.sub(r"<strong>\1</strong>", s)
        s = _ITALIC.sub(r"<em>\1</em>", s)
        out.append(s)
    return "".join(out)


def markdown_to_html(source: str) -> str:
    """``source`` (Markdown) as HTML block elements."""
    blocks: list[str] = []
    para: list[str] = []
    items: list[list[str]] = []
    kind = ""  # "ol" or "ul" while a list is open

    def flush_para() -> None:
        if para:
            blocks.append("<p>" + inline(" ".join(para)) + "</p>")
            para.clear()

    def flush_list() -> None:
        nonlocal kind
        if items:
            body = "".join("<li>" + inline(" ".join(it)) + "</li>" for it in items)
            blocks.append(f"<{kind}>{body}</{kind}>")
            items.clear()
        kind = ""

    for raw in source.splitlines():
        line = raw.strip()
        if not line:
            flush_para()
            flush_list()
            continue
        heading = _HEADING.match(line)
        ordered = _ORDERED.match(line)
        bullet = _BULLET.match(line)
        if heading:
            flush_para()
            flush_list()
            level = len(heading.group(1)) + 1  # the page's own title is the h1
            blocks.append(f"<h{min(level, 6)}>{inline(heading.group(2))}</h{min(level, 6)}>")
        elif ordered or bullet:
            flush_para()
            want = "ol" if ordered else "ul"
            if kind and kind != want:
                flush_list()
            kind = want
            items.append([(ordered or bullet).group(1)])  # type: ignore[union-attr]
        elif items and raw[:1].isspace():  # an indented line continues the list item
            items[-1].append(line)
        else:
            flush_list()
            para.append(line)
    flush_para()
    flush_list()
    return "\n".join(blocks)
