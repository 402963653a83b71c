"""A course's folder as published: feed, captions, chapters and page, read back by other tools.

One small course (a practice at two lengths with chapters and bells, and a silent sit) is
built whole with two jobs; then again with one job, and again as two shards gathered: all
three must be the same, byte for byte.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from mutagen.id3 import ID3

from calmcast.building import build
from calmcast.course import load_course
from calmcast.records import read_records, stale
from conftest import run_cli, write

pytestmark = pytest.mark.slow

PRACTICE = """+++
title = "Two Rooms"
description = "A short practice in two rooms & a bell, for the publishing tests."
minutes = 2
+++
[chapter Arriving]
[bell]
Welcome to this short practice, which begins by simply noticing how the body feels right now, sitting or lying down.
[pause 5s..]
Let the breath be as it is. Nothing to fix & nothing to change.
[pause 5s..]
[chapter Resting]
Rest here for a while.
[pause 10s..]
When you are ready, open your eyes.
[bell]
"""

MANIFEST = """
title = "Rooms & Bells"
guide = "A. Teacher"
description = "A small course for the tests."
base_url = "https://example.org/rooms"
language = "en-GB"
email = "teacher@example.org"
cover = "cover.png"
category = ["Health & Fitness", "Mental Health"]
[defaults]
voice = "espeak:en-gb"
ambience = "none"
duration = "5m"

[[track]]
practice = "rooms.j2"
title = "Two Rooms"
minutes = [1.5, 2]
description = "Two rooms, at two lengths."
date = 2026-01-05

[[track]]
practice = "silent-sit"
title = "Sit"
minutes = 1
set = { interval = "0.5" }
"""

FILES = [
    "01-two-rooms-1m30s.mp3", "01-two-rooms-2min.mp3", "02-sit.mp3",
]  # fmt: skip


def _course_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write(root / "rooms.j2", PRACTICE)
    write(root / "course.toml", MANIFEST)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0x4d7ea8:s=1400x1400",
         "-frames:v", "1", str(root / "cover.png")],
        check=True,
    )  # fmt: skip
    return root / "course.toml"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The course built whole with two jobs: (manifest, folder, what the build returned)."""
    manifest = _course_folder(tmp_path_factory.mktemp("course"))
    out = manifest.parent / "whole"
    done = build(load_course(manifest), out, jobs=2)
    return manifest, out, done


def published(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }  # fmt: skip


def test_a_build_makes_every_file_with_its_captions_and_chapters(built):
    _, out, done = built
    assert [d.track.file for d in done] == FILES
    assert {d.status for d in done} == {"made"}
    names = set(published(out))
    for file in FILES:
        stem = file[:-4]
        assert {file, f"{stem}.vtt", f"{stem}.srt", f"{stem}.chapters.json",
                f"{stem}.chapters.vtt"} <= names  # fmt: skip
    assert {"feed.xml", "index.html", "playlist.m3u8", "manifest.json", "cover.png"} <= names
    assert not [n for n in names if n.endswith(".part") or "/." in n]


def test_the_feed_reads_in_a_feed_parser_with_exact_enclosures(built):
    import feedparser

    _, out, _ = built
    feed = feedparser.parse((out / "feed.xml").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    channel = feed.feed
    assert channel.title == "Rooms & Bells"
    assert channel.language == "en-GB"
    assert channel.image.href == "https://example.org/rooms/cover.png"
    assert channel.publisher_detail.email == "teacher@example.org"  # itunes:owner
    assert channel.author == "A. Teacher"
    assert [t.term for t in channel.tags] == ["Health & Fitness", "Mental Health"]
    assert [e.title for e in feed.entries] == ["Two Rooms (1m30s)", "Two Rooms (2 min)", "Sit"]
    guids = [e.id for e in feed.entries]
    assert len(set(guids)) == 3
    for entry, file in zip(feed.entries, FILES, strict=True):
        (enclosure,) = entry.enclosures
        assert enclosure.href == f"https://example.org/rooms/{file}"
        assert int(enclosure.length) == (out / file).stat().st_size
        assert enclosure.type == "audio/mpeg"
        assert entry.itunes_episodetype == "full"
    assert [e.itunes_episode for e in feed.entries] == ["1", "1", "2"]
    assert feed.entries[0].published.startswith("Mon, 05 Jan 2026")
    assert [e.itunes_duration for e in feed.entries] == ["0:01:30", "0:02:00", "0:01:00"]
    # The Podcasting 2.0 tags, which feedparser does not know: read as XML.
    import xml.etree.ElementTree as ET

    ns = {"podcast": "https://podcastindex.org/namespace/1.0"}
    root = ET.parse(out / "feed.xml").getroot()
    itunes = {"itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd"}
    assert root.find("channel/itunes:type", itunes).text == "serial"
    assert root.find("channel/itunes:explicit", itunes).text == "false"
    assert re.fullmatch(r"[0-9a-f-]{36}", root.find("channel/podcast:guid", ns).text)
    for item, file in zip(root.iter("item"), FILES, strict=True):
        stem = file[:-4]
        kinds = {t.get("type"): t.get("url") for t in item.findall("podcast:transcript", ns)}
        assert kinds == {
            "text/vtt": f"https://example.org/rooms/{stem}.vtt",
            "application/x-subrip": f"https://example.org/rooms/{stem}.srt",
        }
        chapters = item.find("podcast:chapters", ns)
        assert chapters.get("url").endswith(f"{stem}.chapters.json")


def _length(path: Path) -> float:
    return float(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout)  # fmt: skip


def test_captions_parse_as_webvtt_and_srt_with_cues_in_order_inside_the_track(built):
    import io

    import srt
    import webvtt

    _, out, _ = built
    for file in FILES:
        stem = file[:-4]
        seconds = _length(out / file)
        vtt = list(webvtt.from_buffer(io.StringIO((out / f"{stem}.vtt").read_text())))
        subs = list(srt.parse((out / f"{stem}.srt").read_text()))
        assert len(vtt) == len(subs)
        last = 0.0
        for cue, sub in zip(vtt, subs, strict=True):
            start = cue.start_time.in_milliseconds() / 1000
            end = cue.end_time.in_milliseconds() / 1000
            assert last <= start < end <= seconds + 0.05
            assert abs(sub.start.total_seconds() - start) < 0.002
            assert abs(sub.end.total_seconds() - end) < 0.002
            lines = sub.content.splitlines()
            assert 1 <= len(lines) <= 2 and all(len(x) <= 42 for x in lines), lines
            last = end
        if stem.startswith("01"):
            text = " ".join(s.content.replace("\n", " ") for s in subs)
            assert "Nothing to fix & nothing to change." in text
            assert "fix &amp; nothing" in (out / f"{stem}.vtt").read_text()  # escaped for WebVTT
            assert len(subs) >= 5  # the long first sentence is shared over two cues
        else:
            assert subs == []


def test_the_chapters_json_matches_the_mp3_s_id3_chapters(built):
    _, out, _ = built
    for file in FILES:
        stem = file[:-4]
        doc = json.loads((out / f"{stem}.chapters.json").read_text())
        assert doc["version"].startswith("1.")
        chaps = sorted(ID3(str(out / file)).getall("CHAP"), key=lambda c: c.start_time)
        assert [(c["startTime"], c["title"]) for c in doc["chapters"]] == [
            (c.start_time / 1000, str(c.sub_frames["TIT2"])) for c in chaps
        ]
        if stem.startswith("01"):
            assert [c["title"] for c in doc["chapters"]] == ["Arriving", "Resting"]
        import io

        import webvtt

        track = list(webvtt.from_buffer(io.StringIO((out / f"{stem}.chapters.vtt").read_text())))
        assert [(c.start_time.in_milliseconds() / 1000, c.text) for c in track] == [
            (c["startTime"], c["title"]) for c in doc["chapters"]]  # fmt: skip


def test_the_manifest_records_every_file_with_its_inputs_and_figures(built):
    _, out, _ = built
    doc = json.loads((out / "manifest.json").read_text())
    assert [f["file"] for f in doc["files"]] == FILES
    for f in doc["files"]:
        assert f["bytes"] == (out / f["file"]).stat().st_size
        assert abs(f["seconds"] - _length(out / f["file"])) < 0.06
        assert re.fullmatch(r"[0-9a-f]{16}", f["inputs"])
        assert f["tags"]["album"] == "Rooms & Bells" and f["tags"]["artist"] == "A. Teacher"
    assert doc["files"][0]["voice_loudness"] == pytest.approx(-16, abs=0.6)
    assert doc["files"][2]["voice_loudness"] is None  # nothing is spoken in the silent sit
    assert doc["files"][1]["tags"]["track"] == "1/2"


def test_a_track_s_own_minutes_beat_a_duration_in_the_defaults(built):
    _, _, done = built
    assert [round(d.record["seconds"]) for d in done] == [90, 120, 60]


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not driver_path or not browser:
        pytest.skip("headless Chromium with chromedriver is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver_path))


class Ranges(http.server.SimpleHTTPRequestHandler):
    """A static host as players expect one: byte ranges served, so audio can seek."""

    def log_message(self, *args) -> None:
        pass

    def send_head(self):
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not m or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start, end = int(m.group(1)), int(m.group(2) or size - 1)
        end = min(end, size - 1)
        f = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return _Limited(f, end - start + 1)


class _Limited:
    def __init__(self, f, left: int) -> None:
        self.f, self.left = f, left

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


@pytest.fixture
def served(built):
    _, out, _ = built
    handler = functools.partial(Ranges, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_the_page_loads_in_chromium_and_every_player_loads_its_file(built, served):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, _, done = built
    driver = _browser()
    try:
        driver.get(served + "index.html")
        cards = driver.find_elements(By.CSS_SELECTOR, "article.track")
        assert [c.get_attribute("data-file") for c in cards] == FILES
        WebDriverWait(driver, 30).until(lambda d: all(
            c.get_attribute("data-loaded-duration") for c in cards))  # fmt: skip
        for card, item in zip(cards, done, strict=True):
            loaded = float(card.get_attribute("data-loaded-duration"))
            assert loaded == pytest.approx(item.record["seconds"], abs=0.1)
        # The chapter list seeks its player; the page asked nothing of any other host.
        first = cards[0]
        resting = first.find_elements(By.CSS_SELECTOR, "[data-seek]")[1]
        resting.click()
        audio = first.find_element(By.TAG_NAME, "audio")
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return arguments[0].currentTime", audio) >= float(
                resting.get_attribute("data-seek")) - 0.5)  # fmt: skip
        hosts = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).host)"
        )
        assert set(hosts) <= {served.split("/")[2]}
        assert first.find_elements(By.CSS_SELECTOR, "svg.timeline rect.speech")
        assert len(first.find_elements(By.CSS_SELECTOR, "svg.timeline rect.bell")) == 2
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        driver.quit()


def test_one_job_and_two_shards_gathered_give_the_same_bytes(built, tmp_path):
    manifest, whole, _ = built
    course = load_course(manifest)
    one = tmp_path / "one"
    build(course, one, jobs=1)
    assert published(one) == published(whole)

    gathered = tmp_path / "gathered"
    for k in (1, 2):
        shard = tmp_path / f"shard{k}"
        done = build(course, shard, jobs=1, shard=(k, 2))
        assert not (shard / "feed.xml").exists()
        assert [d.status for d in done].count("made") in (1, 2)
        shutil.copytree(shard, gathered, dirs_exist_ok=True)
    build(course, gathered, index_only=True)
    assert published(gathered) == published(whole)


def test_a_second_build_does_no_audio_work_and_rewrites_nothing(built):
    manifest, out, _ = built
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    started = time.perf_counter()
    proc = run_cli("build", str(manifest), "-o", str(out))
    took = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    assert "3 files, 0 made, 3 up to date" in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    assert took < 10  # the figure (under 2 s) is measured by scripts/bench
    assert stale(load_course(manifest), out) == []


def test_check_stale_lists_what_is_missing_and_changes_nothing(built, tmp_path):
    manifest, whole, _ = built
    out = tmp_path / "copy"
    shutil.copytree(whole, out)
    ok = run_cli("build", str(manifest), "-o", str(out), "--check", "--stale")
    assert ok.returncode == 0, ok.stderr
    (out / "01-two-rooms-1m30s.srt").unlink()
    (out / "index.html").write_text("changed by hand")
    before = published(out)
    proc = run_cli("build", str(manifest), "-o", str(out), "--check", "--stale")
    assert proc.returncode == 1
    assert "01-two-rooms-1m30s.mp3: missing or out of date" in proc.stdout
    assert published(out) == before
    again = build(load_course(manifest), out)
    assert [d.status for d in again] == ["made", "up to date", "up to date"]
    assert published(out) == published(whole)


def test_index_only_refuses_while_files_are_missing(built, tmp_path):
    manifest, _, _ = built
    proc = run_cli("build", str(manifest), "-o", str(tmp_path / "empty"), "--index-only")
    assert proc.returncode == 1
    assert re.search(r"3 of 3 files are missing or out of date", proc.stderr)
    assert not (tmp_path / "empty" / "feed.xml").exists()


def test_source_date_epoch_dates_the_feed(built, tmp_path, monkeypatch):
    manifest, whole, _ = built
    out = tmp_path / "dated"
    shutil.copytree(whole, out)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01
    build(load_course(manifest), out)
    feed = (out / "feed.xml").read_text()
    assert "<lastBuildDate>Thu, 01 Jan 2026 00:00:00 GMT</lastBuildDate>" in feed
    assert feed.count("<pubDate>") == 3  # the dated track keeps its own date
    assert "Mon, 05 Jan 2026" in feed


@pytest.mark.parametrize("how", ["SIGTERM to the build", "Ctrl-C to its process group"])
def test_a_build_stopped_keeps_every_earlier_file_and_finishes_next_time(tmp_path, how):
    manifest = _course_folder(tmp_path / "course")
    out = tmp_path / "out"
    text = MANIFEST.replace("minutes = [1.5, 2]", "minutes = [1.5, 6]")
    write(manifest, text)
    assert build(load_course(manifest), out, jobs=1, shard=(3, 3))[2].status == "made"
    sit = (out / "02-sit.mp3").read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-m", "calmcast", "build", str(manifest), "-o", str(out), "-j", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.glob(".*.part.mp3")):
        time.sleep(0.1)
    if how.startswith("SIGTERM"):
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: every process in the group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["calmcast: interrupted"], err
    assert (out / "02-sit.mp3").read_bytes() == sit
    leftovers = [p.name for p in out.rglob("*") if ".part" in p.name]
    assert leftovers == []
    long = out / "01-two-rooms-6min.mp3"
    if long.exists():  # finished before the stop reached it (ffmpeg gets Ctrl-C too): whole
        assert _length(long) == pytest.approx(360, abs=0.1)
    assert not (out / "feed.xml").exists()
    done = build(load_course(manifest), out, jobs=2)
    assert [d.status for d in done][2] == "up to date"
    assert len(read_records(out)) == 3 and stale(load_course(manifest), out) == []
