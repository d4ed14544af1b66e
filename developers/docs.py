"""The guides in docs/, rendered as portal pages: the same files the repository shows,
so the two never disagree."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from django.conf import settings
from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin

DOCS = Path(settings.BASE_DIR) / "docs"
# Relative links between guides (`errors.md#code`) become portal links (`/docs/errors#code`).
_LINK = re.compile(r'href="(?!https?:|/|#)([\w-]+)\.md(#[^"]*)?"')
# Pictures beside the guides (`img/portal/dashboard.png`) are served from /docs/img/.
_IMAGE = re.compile(r'src="img/([\w/-]+\.png)"')
IMAGES = DOCS / "img"


@cache
def _renderer() -> MarkdownIt:
    return (
        MarkdownIt("commonmark", {"html": False})
        .enable("table")
        .use(anchors_plugin, min_level=1, max_level=3, slug_func=_slug)
    )


def _slug(title: str) -> str:
    return re.sub(r"[^\w]+", "-", title.strip().lower().replace("`", "")).strip("-")


def guides() -> list[tuple[str, str]]:
    """(slug, title) of every guide, index first."""
    found = []
    for path in sorted(DOCS.glob("*.md")):
        title = path.read_text().splitlines()[0].lstrip("# ").strip()
        found.append((path.stem, title))
    return sorted(found, key=lambda guide: guide[0] != "index")


def guide_html(slug: str) -> tuple[str, str] | None:
    """(title, HTML) of the guide, or None if there is no such guide."""
    if not re.fullmatch(r"[\w-]+", slug):
        return None
    path = DOCS / f"{slug}.md"
    if not path.is_file():
        return None
    text = path.read_text()
    html = _renderer().render(text)
    html = _LINK.sub(lambda m: f'href="/docs/{m.group(1)}{m.group(2) or ""}"', html)
    html = _IMAGE.sub(lambda m: f'src="/docs/img/{m.group(1)}" loading="lazy"', html)
    return text.splitlines()[0].lstrip("# ").strip(), html


def guide_image(name: str) -> Path | None:
    """A picture from docs/img/, or None: only PNGs, and never outside that folder."""
    if not re.fullmatch(r"[\w-]+(/[\w-]+)*\.png", name):
        return None
    path = (IMAGES / name).resolve()
    if not path.is_file() or IMAGES.resolve() not in path.parents:
        return None
    return path
