"""report.md: the report as text tables; its images are files in report_files/ next to it."""

from __future__ import annotations

from hpcansible.report.document import (
    Block,
    Document,
    Image,
    Missing,
    Paragraph,
    Preformatted,
    Table,
)

FILES_DIR = "report_files"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"> **Warning:** {block.text}" if block.kind == "warning" else block.text
    if isinstance(block, Table):
        lines = [f"*{block.caption}*", ""] if block.caption else []
        lines.append("| " + " | ".join(_cell(h) for h in block.headers) + " |")
        lines.append("|" + "---|" * len(block.headers))
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    if isinstance(block, Image):
        text = f"![{block.title}]({FILES_DIR}/{block.name}.png)"
        return f"{text}\n\n*{block.caption}*" if block.caption else text
    if isinstance(block, Missing):
        return f"> **{block.title}: not shown.** {block.reason}"
    if isinstance(block, Preformatted):
        fence = "````" if "```" in block.text else "```"
        body = f"{fence}\n{block.text}\n{fence}"
        return f"<details><summary>{block.title}</summary>\n\n{body}\n\n</details>"
    raise TypeError(f"unknown block {type(block).__name__}")


def render_markdown(document: Document) -> str:
    parts = [f"# {document.title}", document.subtitle]
    for section in document.sections:
        parts.append(f"## {section.title}")
        parts.extend(render_block(block) for block in section.blocks)
    return "\n\n".join(parts) + "\n"
