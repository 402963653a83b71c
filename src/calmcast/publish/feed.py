"""feed.xml: RSS 2.0 with the iTunes and Podcasting 2.0 namespaces, from a course's records.

Built with the standard library's ElementTree, which escapes and declares namespaces for us.
Nothing in it depends on the time of the build: dates come from the manifest, or from
$SOURCE_DATE_EPOCH; guids come from the feed's address (or the course's own `guid`) and
each file's name, so they stay the same from build to build.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from email.utils import format_datetime
from urllib.parse import quote

from . import source_date

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
ATOM = "http://www.w3.org/2005/Atom"
#: The namespace the Podcasting 2.0 spec derives a feed's guid in (UUIDv5 of its address).
PODCAST_GUID = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")

for prefix, uri in (("itunes", ITUNES), ("podcast", PODCAST), ("atom", ATOM)):
    ET.register_namespace(prefix, uri)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        node.text = text
    return node


def _i(tag: str) -> str:
    return f"{{{ITUNES}}}{tag}"


def _p(tag: str) -> str:
    return f"{{{PODCAST}}}{tag}"


def url(course, name: str) -> str:
    """Return the address of a file in the folder: absolute with base_url, else relative."""
    return f"{course.base_url}{quote(name)}"


def feed_guid(course) -> uuid.UUID:
    """Return the feed's podcast:guid: UUIDv5 of its address without the scheme."""
    if course.base_url:
        address = url(course, "feed.xml").split("://", 1)[1].rstrip("/")
        return uuid.uuid5(PODCAST_GUID, address)
    return uuid.uuid5(PODCAST_GUID, f"calmcast/{course.title}")


def _duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


def rss(course, files, cover: str | None) -> bytes:
    """Return the course's podcast feed."""
    root = ET.Element("rss", {"version": "2.0"})
    channel = _sub(root, "channel")
    link = course.link or course.base_url or "index.html"
    if course.base_url:
        _sub(channel, f"{{{ATOM}}}link", href=url(course, "feed.xml"), rel="self",
             type="application/rss+xml")  # fmt: skip
    _sub(channel, "title", course.title)
    _sub(channel, "link", link if course.link or course.base_url else url(course, "index.html"))
    _sub(channel, "description", course.description or course.title)
    _sub(channel, "language", course.language)
    if course.copyright:
        _sub(channel, "copyright", course.copyright)
    _sub(channel, "generator", "calmcast")
    dates = [t.date for t, _ in files if t.date]
    built = source_date() or (max(dates) if dates else None)
    if built:
        _sub(channel, "lastBuildDate", format_datetime(built, usegmt=True))
    if cover:
        image = _sub(channel, "image")
        _sub(image, "url", url(course, cover))
        _sub(image, "title", course.title)
        _sub(image, "link", link)
        _sub(channel, _i("image"), href=url(course, cover))
    _sub(channel, _i("author"), course.author or course.guide or "calmcast")
    if course.email:
        owner = _sub(channel, _i("owner"))
        _sub(owner, _i("name"), course.author or course.guide or course.title)
        _sub(owner, _i("email"), course.email)
    top = _sub(channel, _i("category"), text=None, text_=course.category[0])
    if len(course.category) > 1:
        _sub(top, _i("category"), text_=course.category[1])
    _sub(channel, _i("explicit"), "true" if course.explicit else "false")
    _sub(channel, _i("type"), "serial")
    guid = feed_guid(course)
    _sub(channel, _p("guid"), str(guid))
    for t, record in files:
        item = _sub(channel, "item")
        _sub(item, "title", t.title)
        _sub(item, _i("title"), t.title)
        _sub(item, "description", t.description or record.get("about") or t.title)
        _sub(item, "link", f"{url(course, 'index.html')}#{quote(t.stem)}")
        _sub(item, "guid", str(uuid.uuid5(guid, t.file)), isPermaLink="false")
        when = t.date or source_date()
        if when:
            _sub(item, "pubDate", format_datetime(when, usegmt=True))
        _sub(item, "enclosure", url=url(course, t.file), length=str(record["size"]),
             type="audio/mpeg")  # fmt: skip
        _sub(item, _i("duration"), _duration(record["seconds"]))
        _sub(item, _i("episode"), str(t.number))
        _sub(item, _i("episodeType"), "full")
        _sub(item, _i("explicit"), "true" if course.explicit else "false")
        _sub(item, _p("transcript"), url=url(course, f"{t.stem}.vtt"), type="text/vtt",
             language=record.get("language") or course.language, rel="captions")  # fmt: skip
        _sub(item, _p("transcript"), url=url(course, f"{t.stem}.srt"),
             type="application/x-subrip", language=record.get("language") or course.language, rel="captions")  # fmt: skip
        _sub(item, _p("chapters"), url=url(course, f"{t.stem}.chapters.json"),
             type="application/json+chapters")  # fmt: skip
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
