"""The Python API: its surface, its settings, its errors, pydub in and out, and the README."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
import pickle
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import calmcast
from calmcast import settings as table
from conftest import ROOT, decode, ebur128, run_cli, write

SHORT = """+++
title = "Short"
[variables.name]
default = "friend"
+++
[chapter Start]
Hello, {{ name }}. Let the breath be easy.
[pause 5s..]
[chapter End]
Rest here a moment longer. [bell]
"""


def test_every_public_name_is_there_and_none_is_hidden_by_a_module():
    assert set(calmcast.__all__) >= {
        "plan", "render", "render_audio", "build", "list_practices", "list_voices",
        "list_ambiences", "list_bells", "Settings", "Plan", "Result", "Built", "Progress",
        "CalmcastError", "ScriptError", "LengthError", "VoiceError", "AudioError",
        "OutputError", "ConfigError",
    }  # fmt: skip
    modules = {m.name for m in pkgutil.iter_modules(calmcast.__path__)}
    assert not modules & set(calmcast.__all__), "a submodule import would replace the name"
    for name in calmcast.__all__:
        assert getattr(calmcast, name) is not None
    importlib.import_module("calmcast.pipeline")  # the machinery leaves the API's names alone
    importlib.import_module("calmcast.voices")
    assert callable(calmcast.render) and calmcast.render.__module__ == "calmcast.api"
    assert (ROOT / "src" / "calmcast" / "py.typed").is_file()
    with pytest.raises(AttributeError):
        calmcast.no_such_thing  # noqa: B018


def test_importing_calmcast_loads_no_audio_machinery():
    code = (
        "import sys, calmcast; calmcast.render; calmcast.Settings; calmcast.ScriptError\n"
        "heavy = {'numpy', 'jinja2', 'pydub', 'mutagen', 'soxr', 'pyttsx3'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_settings_are_the_tables_with_its_defaults():
    fields = {f.name: f.default for f in dataclasses.fields(calmcast.Settings)}
    assert fields == {s.name: s.default for s in table.for_command("render")}
    assert calmcast.Settings().ambience == "rain"  # the CLI's default bed, not none


def test_a_setting_is_checked_as_the_cli_checks_it():
    with pytest.raises(calmcast.ConfigError, match="bed_level: expected a number from -60 to 0"):
        calmcast.Settings(bed_level=5).checked()
    with pytest.raises(calmcast.ConfigError, match="bitrate"):
        calmcast.Settings(bitrate="100k").checked()
    with pytest.raises(calmcast.ConfigError, match="minutes or duration"):
        calmcast.Settings(minutes=5, duration="5m").checked()
    with pytest.raises(TypeError, match="did you mean bed_level"):
        calmcast.Settings().replace(bedlevel=-10)
    got = calmcast.Settings(duration="12m30s", fade_in="2s", sample_rate=48000).checked()
    assert got["duration"] == 12.5 and got["fade_in"] == 2 and got["sample_rate"] == 48000
    assert calmcast.Settings(ambience=None).checked()["ambience"] == "none"


def test_plan_with_no_practice_says_so():
    with pytest.raises(TypeError, match="practice"):
        calmcast.plan()  # type: ignore[call-arg]


def test_errors_say_where_as_fields(tmp_path):
    bad = write(tmp_path / "bad.j2", "Breathe in.\nRest [paus 10s] now.\n")
    with pytest.raises(calmcast.ScriptError) as e:
        calmcast.plan(bad, voice="fake:steady")
    assert (e.value.file, e.value.line, e.value.column) == (str(bad), 2, 6)
    assert e.value.reason.startswith("unknown marker [paus 10s]")
    assert str(e.value) == f"{bad}:2:6: {e.value.reason}"
    front = write(tmp_path / "front.j2", "+++\ntitle = 3\n+++\nHello.\n")
    with pytest.raises(calmcast.ScriptError) as e:
        calmcast.plan(front, voice="fake:steady")
    assert e.value.file == str(front) and "title: expected text" in e.value.reason
    jinja = write(tmp_path / "jinja.j2", "Hello.\n{{ 1 / 0 }}\n")
    with pytest.raises(calmcast.ScriptError) as e:
        calmcast.plan(jinja, voice="fake:steady")
    assert (e.value.file, e.value.line) == (str(jinja), 2)
    # Fields survive the trip from a build's worker process.
    again = pickle.loads(pickle.dumps(e.value))
    assert (type(again), again.file, again.line, str(again)) == (
        calmcast.ScriptError, e.value.file, 2, str(e.value))  # fmt: skip


def test_a_length_out_of_reach_names_the_practice_file(tmp_path):
    practice = write(tmp_path / "s.j2", SHORT)
    with pytest.raises(calmcast.LengthError) as e:
        calmcast.plan(practice, minutes=0.2, voice="fake:steady")
    assert e.value.file == str(practice) and e.value.reason.startswith("12s is out of reach")


def test_a_manifest_gives_every_problem_as_a_field(tmp_path):
    manifest = write(tmp_path / "c.toml", 'title = "C"\n[[track]]\npractice = "settling"\n'
                     'minutes = 0\nbed_level = 4\n')  # fmt: skip
    with pytest.raises(calmcast.ConfigError) as e:
        calmcast.build(manifest, tmp_path / "out")
    assert e.value.file == str(manifest)
    assert len(e.value.problems) == 2 and all("track 1" in p for p in e.value.problems)
    assert not (tmp_path / "out").exists()


def test_plan_reports_progress_and_speaks_with_the_fake_voice(tmp_path):
    events = []
    p = calmcast.plan(write(tmp_path / "s.j2", SHORT), minutes=1, voice="fake:steady",
                      values={"name": "Sam"}, progress=events.append)  # fmt: skip
    assert p.timeline.length == 60 * p.timeline.sample_rate
    assert p.script.values == {"name": "Sam"}
    spoken = [e for e in events if e.stage is calmcast.Stage.SPEAKING]
    assert [e.done for e in spoken] == list(range(1, len(p.script.speech) + 1))
    assert p.rows()[0]["kind"] == "lead-in" and isinstance(p.rows()[0]["kind"], str)


def test_to_audiosegment_is_the_session_at_its_length_and_loudness(tmp_path):
    from pydub import AudioSegment

    p = calmcast.plan(write(tmp_path / "s.j2", SHORT), minutes=1, voice="espeak:en-gb",
                      ambience=None)  # fmt: skip
    events = []
    audio = p.to_audiosegment(events.append)
    assert isinstance(audio, AudioSegment)
    assert (audio.frame_rate, audio.channels, audio.sample_width) == (44100, 2, 2)
    assert audio.frame_count() == p.timeline.length
    mixing = [e for e in events if e.stage is calmcast.Stage.MIXING]
    assert mixing[-1].done == pytest.approx(60) and mixing[-1].fraction == 1
    audio.export(tmp_path / "s.wav", format="wav")
    assert ebur128(tmp_path / "s.wav")[1] <= -1.0
    # The voice is the anchor: its speech alone, read by ffmpeg's meter, is at -16 LUFS.
    spans = [audio.get_sample_slice(e.start, e.end) for e in p.timeline.events
             if isinstance(e.segment, calmcast.Speech)]  # fmt: skip
    sum(spans, AudioSegment.empty()).export(tmp_path / "speech.wav", format="wav")
    assert ebur128(tmp_path / "speech.wav")[0] == pytest.approx(-16, abs=1.0)


def test_an_audiosegment_is_a_bed_and_a_bell(tmp_path):
    from pydub import AudioSegment
    from pydub.generators import Sine, WhiteNoise

    bed = WhiteNoise().to_audio_segment(duration=4000, volume=-20).low_pass_filter(800)
    ding = Sine(880).to_audio_segment(duration=1500, volume=-6).fade_out(1400)
    practice = write(tmp_path / "s.j2", SHORT)
    p = calmcast.plan(practice, minutes=1, voice="fake:steady", ambience=bed, bell=ding)
    assert Path(p.request.ambience).suffix == ".wav" and Path(p.request.bell).is_file()
    # The same sound is written once, under the hash of its samples.
    again = calmcast.plan(practice, minutes=1, voice="fake:steady", ambience=bed, bell=ding)
    assert again.request.ambience == p.request.ambience
    audio = p.to_audiosegment()
    pcm = np.frombuffer(audio.raw_data, np.int16).reshape(-1, 2)
    lead_in = pcm[: 2 * 44100]  # bed under the lead-in (after its fade-in starts)
    assert np.abs(lead_in).max() > 0
    with pytest.raises(calmcast.ConfigError, match=r"pydub\.AudioSegment"):
        calmcast.plan(practice, voice="fake:steady", ambience=3.5)
    with pytest.raises(calmcast.ConfigError, match="empty"):
        calmcast.plan(practice, voice="fake:steady", bell=AudioSegment.empty())


@pytest.mark.slow
def test_the_cli_and_the_api_make_the_same_file(tmp_path):
    practice = write(tmp_path / "s.j2", SHORT)
    options = {"minutes": 0.75, "voice": "espeak:en-gb", "ambience": "ocean", "bell": "chime",
               "bed_level": -24, "wpm": 150, "title": "Same", "track": "2/3"}  # fmt: skip
    flags = []
    for name, value in options.items():
        flags += [table.BY_NAME[name].flag, str(value)]
    done = run_cli("render", str(practice), "-o", str(tmp_path / "cli.mp3"), "--set",
                   "name=Sam", *flags)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = calmcast.render(practice, tmp_path / "api.mp3", values={"name": "Sam"}, **options)
    cli, api = (hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("cli.mp3",
                                                                                 "api.mp3"))
    assert cli == api
    assert result.seconds == 45 and abs(result.voice_loudness + 16) < 0.6


@pytest.mark.slow
def test_the_readme_examples_run(tmp_path):
    """Every Python example in the README's "Using calmcast from Python", as written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using calmcast from Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 5
    (tmp_path / "output").mkdir()
    code = "\n".join(blocks)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env=os.environ)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "output/mine.j2 1 29 unknown marker [paus 10s]" in out
    assert "bed_level: expected a number from -60 to 0, got 5" in out
    assert "['made', 'made']" in out and "2/2 " in out
    wav = decode(tmp_path / "output" / "settling.wav")
    assert len(wav) == 5 * 60 * 44100
    for name in ("sam.mp3", "settling-hush.mp3"):
        assert (tmp_path / "output" / name).stat().st_size > 10_000
