"""What a report says, independent of its rendering: report.html and report.md render the
same Document."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Paragraph:
    text: str
    kind: str = "text"  # text | note | warning


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Image:
    name: str  # file stem: report_files/<name>.png next to report.md
    title: str
    png: bytes
    caption: str = ""


@dataclass
class Missing:
    """A panel that could not be drawn, and why: the report says so where it would be."""

    title: str
    reason: str


@dataclass
class Preformatted:
    title: str
    text: str


Block = Paragraph | Table | Image | Missing | Preformatted


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    anchor: str = ""


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)

    def images(self) -> list[Image]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Image)]

    def missing(self) -> list[Missing]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Missing)]
