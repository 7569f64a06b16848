"""report.html: one self-contained file (styles inline, images as base64 PNG, no scripts and
no reference to anything outside it), readable from the shared filesystem or a laptop."""

from __future__ import annotations

import base64
from html import escape

from hpcansible.report.document import (
    Block,
    Document,
    Image,
    Missing,
    Paragraph,
    Preformatted,
    Table,
)

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       color: #1d1d1f; background: #fff; }
main { max-width: 1220px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 2px; } h2 { font-size: 18px; margin: 28px 0 8px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.subtitle { color: #555; margin: 0 0 12px; font-size: 13px; }
nav a { margin-right: 14px; font-size: 13px; color: #1f5fa8; }
figure { margin: 0 0 2px; } figure img { width: 100%; display: block; }
figcaption { font-size: 12px; color: #555; margin: 0 0 10px 7%; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 14px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-size: 12px; color: #555; padding-bottom: 3px; }
.text { font-size: 14px; } .note { font-size: 13px; color: #444; } .warning { background: #fff4e5;
  border-left: 4px solid #f0a030; padding: 6px 10px; font-size: 13px; }
.missing { background: #fbeaea; border-left: 4px solid #d62728; padding: 8px 12px;
  margin: 4px 0 10px 7%; font-size: 13px; }
details { margin: 4px 0 10px; } summary { cursor: pointer; font-size: 13px; }
pre { background: #f7f7f7; padding: 8px; font-size: 12px; overflow-x: auto; }
"""


def _cell(text: str) -> str:
    numeric = text.replace(",", "").replace(".", "", 1).replace("-", "", 1).replace("%", "")
    kind = ' class="num"' if numeric.isdigit() else ""
    return f"<td{kind}>{escape(text)}</td>"


def render_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f'<p class="{block.kind}">{escape(block.text)}</p>'
    if isinstance(block, Table):
        caption = f"<caption>{escape(block.caption)}</caption>" if block.caption else ""
        head = "".join(f"<th>{escape(h)}</th>" for h in block.headers)
        rows = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in block.rows)
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        caption = f"<figcaption>{escape(block.caption)}</figcaption>" if block.caption else ""
        return (
            f'<figure id="{escape(block.name)}"><img alt="{escape(block.title)}" '
            f'title="{escape(block.title)}" src="data:image/png;base64,{data}">{caption}</figure>'
        )
    if isinstance(block, Missing):
        return (
            f'<div class="missing"><b>{escape(block.title)}: not shown.</b> '
            f"{escape(block.reason)}</div>"
        )
    if isinstance(block, Preformatted):
        return (
            f"<details><summary>{escape(block.title)}</summary>"
            f"<pre>{escape(block.text)}</pre></details>"
        )
    raise TypeError(f"unknown block {type(block).__name__}")


def render_html(document: Document) -> str:
    nav = " ".join(
        f'<a href="#{escape(s.anchor)}">{escape(s.title)}</a>'
        for s in document.sections
        if s.anchor
    )
    body = []
    for section in document.sections:
        anchor = f' id="{escape(section.anchor)}"' if section.anchor else ""
        body.append(f"<section{anchor}><h2>{escape(section.title)}</h2>")
        body.extend(render_block(block) for block in section.blocks)
        body.append("</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(document.title)}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{escape(document.title)}</h1>"
        f'<p class="subtitle">{escape(document.subtitle)}</p><nav>{nav}</nav>'
        + "\n".join(body)
        + "</main></body></html>\n"
    )
