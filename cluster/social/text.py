"""A post's HTML content reduced to the plain text a reader sees, for storing and for the text classifier.

Mastodon (and ActivityPub generally) sends a post's content as HTML: paragraphs, line breaks, links
whose URL is split into visible and `invisible` spans, mentions and hashtags as links. The words a
reader sees are kept, paragraphs and line breaks become newlines, entities are decoded, and
markup the reader does not see (scripts, styles) is dropped. The standard library's tolerant
parser is used: malformed HTML still gives its text.
"""

import re
from html.parser import HTMLParser

_BLOCKS = frozenset({"p", "div", "li", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6"})
_HIDDEN = frozenset({"script", "style", "template"})
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data.replace("\n", " "))


def html_to_text(html: str) -> str:
    """The visible text of `html`: paragraphs separated by a blank line, runs of spaces collapsed, trimmed."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(collector.parts).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
