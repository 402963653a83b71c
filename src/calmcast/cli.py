"""The calmcast command line: a thin caller of the library.

Commands import what they need inside themselves, so `calmcast --help` stays instant.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import click

from . import __version__
from .durations import format_clock, format_duration, parse_duration
from .errors import CalmcastError
from .limits import MAX_SESSION

log = logging.getLogger("calmcast")


class Duration(click.ParamType):
    """A length like 12m30s, 90 or 2.5s, as seconds."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


class Number(click.FloatRange):
    """A finite number in a range: click's FloatRange lets NaN through every bound."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return rv


def _set_values(ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", ctx, param)
        out[name.strip()] = value
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="calmcast")
@click.option("-v", "--verbose", count=True, help="Say more (twice for debug detail).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """Turn meditation practice scripts into finished, tagged audio, offline."""
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    if debug:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    ctx.obj = {"debug": debug, "quiet": quiet}


def _voice_options(f):
    f = click.option("--pitch", type=Number(0, 100), help="Voice pitch, 0 to 100 (espeak).")(f)
    f = click.option(
        "--rate",
        type=Number(40, 500),  # each backend checks its own range
        help="Words a minute. Default: a meditation pace (140).",
    )(f)
    f = click.option(
        "--voice",
        metavar="NAME",
        help="espeak:en-gb, piper:joe, or a Piper .onnx path. See `calmcast voices`.",
    )(f)
    return f


def _length_options(f):
    f = click.option(
        "--set",
        "values",
        multiple=True,
        metavar="NAME=VALUE",
        callback=_set_values,
        help="Set a practice variable (repeatable).",
    )(f)
    f = click.option(
        "--duration", type=Duration(), metavar="LENGTH", help="The length as 12m30s, 90s or 1h."
    )(f)
    f = click.option(
        "--minutes",
        type=Number(min=0, max=MAX_SESSION / 60, min_open=True),
        help="The length in minutes (12.5 for 12m30s), at most 720. Default: the practice's.",
    )(f)
    return f


def _minutes(minutes: float | None, duration: float | None) -> float | None:
    if minutes is not None and duration is not None:
        raise click.UsageError("give --minutes or --duration, not both")
    return duration / 60 if duration is not None else minutes


@cli.command()
@click.argument("practice")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The MP3 to write (- for stdout). Default: output/PRACTICE.mp3.",
)
@_length_options
@_voice_options
@click.option(
    "--ambience",
    default="rain",
    show_default=True,
    metavar="NAME|FILE",
    help="The bed under the voice: a built-in name, an audio file, or none.",
)
@click.option("--bell", metavar="NAME|FILE", help="Strike this bell at the start and the end.")
@click.option(
    "--interval-bell",
    type=Duration(),
    metavar="LENGTH",
    help="Strike the bell every LENGTH (a timer), e.g. 5m.",
)
@click.option(
    "--bed-level",
    type=Number(-60, 0),
    default=-20.0,
    show_default=True,
    help="Bed loudness relative to the voice, LU.",
)
@click.option(
    "--duck",
    type=Number(0, 40),
    default=9.0,
    show_default=True,
    help="How far the bed dips under speech, dB.",
)
@click.option("--fade-in", type=Duration(), default=3.0, show_default=True, help="Bed fade-in.")
@click.option("--fade-out", type=Duration(), default=6.0, show_default=True, help="Bed fade-out.")
@click.option(
    "--loudness",
    type=Number(-30, -10),
    default=-16.0,
    show_default=True,
    help="Loudness of the voice, LUFS, measured on the speech alone; at most -13.5 (mono -16.5).",
)
@click.option(
    "--sample-rate",
    type=click.Choice(["22050", "32000", "44100", "48000"]),
    default="44100",
    show_default=True,
    help="Sample rate of the MP3, Hz.",
)
@click.option("--channels", type=click.IntRange(1, 2), default=2, show_default=True)
@click.option("--bitrate", default="128k", show_default=True, help="MP3 bitrate, e.g. 96k, 192k.")
@click.option("--title", help="Title tag. Default: the practice's title.")
@click.option("--artist", "--guide", "artist", help="Artist tag: the guide's name.")
@click.option("--album", help="Album tag.")
@click.option("--track", help="Track number tag, e.g. 3 or 3/8.")
@click.option(
    "--cover",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JPEG or PNG cover image.",
)
@click.option(
    "--id3",
    type=click.Choice(["3", "4"]),
    default="3",
    show_default=True,
    help="ID3 version: 2.3 plays everywhere, 2.4 is newer.",
)
@click.pass_context
def render(
    ctx,
    practice,
    output,
    minutes,
    duration,
    values,
    voice,
    rate,
    pitch,
    ambience,
    bell,
    interval_bell,
    bed_level,
    duck,
    fade_in,
    fade_out,
    loudness,
    sample_rate,
    channels,
    bitrate,
    title,
    artist,
    album,
    track,
    cover,
    id3,
):
    """Render PRACTICE (a built-in name or a template file) to a finished MP3."""
    import re

    from .encode import MP3_BITRATES

    if track is not None and not re.fullmatch(r"[1-9]\d{0,3}(/[1-9]\d{0,3})?", track.strip()):
        raise click.BadParameter(
            f"{track!r}: expected a number like 3 or 3/8", param_hint="--track"
        )
    for name, text in (("--title", title), ("--artist", artist), ("--album", album)):
        if text is not None and (len(text) > 500 or any(ord(c) < 32 for c in text)):
            raise click.BadParameter(
                f"{text[:40]!r}: at most 500 characters on one line, no control characters",
                param_hint=name,
            )
    from .mix import MixSettings
    from .render import Output, Request
    from .render import render as do_render

    if not re.fullmatch(r"\d{1,3}k", bitrate) or int(bitrate[:-1]) not in MP3_BITRATES:
        raise click.BadParameter(
            f"{bitrate!r}: MP3 has {', '.join(f'{b}k' for b in MP3_BITRATES)}",
            param_hint="--bitrate",
        )
    mix = MixSettings(
        rate=int(sample_rate),
        channels=channels,
        bed_level=bed_level,
        duck=duck,
        fade_in=fade_in,
        fade_out=fade_out,
        loudness=loudness,
        bitrate=bitrate,
    )
    request = Request(
        practice=practice,
        minutes=_minutes(minutes, duration),
        voice=voice,
        rate=rate,
        pitch=pitch,
        values=values,
        ambience=None if ambience.lower() == "none" else ambience,
        bell=bell,
        interval_bell=interval_bell,
        mix=mix,
    )
    if output is None:  # the default folder is made; a folder the user names must exist
        output = Path("output") / f"{Path(practice).stem}.mp3"
        output.parent.mkdir(exist_ok=True)
    out = Output(
        output,
        id3_version=int(id3),
        title=title,
        artist=artist,
        album=album,
        track=track,
        cover=cover,
    )
    result = do_render(request, out)
    if not ctx.obj["quiet"]:
        voice = (
            f"voice {result.voice_loudness:.1f} LUFS, "
            if math.isfinite(result.voice_loudness)
            else "no voice, "
        )
        where = "stdout" if str(result.path) == "-" else result.path
        click.echo(
            f"{where}: {format_clock(result.seconds)}, {voice}"
            f"programme {result.loudness:.1f} LUFS, peak {result.true_peak:.1f} dBTP, "
            f"{result.plan.voice.name}, made in {result.timings['total']:.1f} s",
            err=str(result.path) == "-",  # stdout carries the MP3
        )


@cli.command()
@click.argument("practice")
@_length_options
@_voice_options
@click.option("--bell", metavar="NAME", help="Strike this bell at the start and the end.")
@click.option("--interval-bell", type=Duration(), metavar="LENGTH", help="A bell every LENGTH.")
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as a JSON list.")
def plan(practice, minutes, duration, values, voice, rate, pitch, bell, interval_bell, as_json):
    """Print the timeline of PRACTICE: each segment's kind, start, length and text."""
    from .render import Request
    from .render import plan as do_plan

    request = Request(
        practice=practice,
        minutes=_minutes(minutes, duration),
        voice=voice,
        rate=rate,
        pitch=pitch,
        values=values,
        bell=bell,
        interval_bell=interval_bell,
    )
    p = do_plan(request=request)
    rows = p.rows()
    if as_json:
        click.echo(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    speech = sum(r["length"] for r in rows if r["kind"] == "speech")
    click.echo(
        f"{p.practice.title}: {format_clock(p.timeline.duration)} with {p.voice.name}, "
        f"speech {speech / p.timeline.duration:.0%}"
    )
    for r in rows:
        if r["kind"] in ("breath",):
            continue
        text = r["text"] if len(r["text"]) <= 70 else r["text"][:67] + "..."
        click.echo(
            f"{format_clock(r['start']):>10}  {format_duration(r['length']):>7}  "
            f"{r['kind']:<9} {text}".rstrip()
        )


@cli.command()
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="The folder to build into. Default: output/COURSE-TITLE.")  # fmt: skip
@click.option("--force", is_flag=True, help="Make every track again, even those up to date.")
@click.option("--check", "check_only", is_flag=True, help="Check the manifest; render nothing.")
@click.option("--trust", is_flag=True,
              help="Let the manifest name files outside its own folder (only for your own).")  # fmt: skip
@click.pass_context
def build(ctx, manifest, folder, force, check_only, trust):
    """Build a course MANIFEST (TOML) into a folder of tagged MP3s and a playlist."""
    from .course import _slug, check, load_course
    from .course import build as do_build

    course = load_course(manifest, trusted=trust)
    if check_only:
        check(course)
        click.echo(f"{manifest}: {len(course.tracks)} tracks, all fine")
        return
    folder = folder or Path("output") / _slug(course.title)

    def report(item):
        if not ctx.obj["quiet"]:
            took = f" in {item.seconds:.1f} s" if item.status == "made" else ""
            click.echo(f"{item.path}: {item.status}{took}")

    done = do_build(course, folder, force=force, report=report)
    made = sum(1 for d in done if d.status == "made")
    if not ctx.obj["quiet"]:
        click.echo(f"{folder}: {len(done)} tracks, {made} made, {len(done) - made} up to date")


@cli.command()
def voices():
    """List the installed voices of every backend."""
    from .voices import list_voices

    found = list_voices()
    for v in found:
        kind = "neural" if v.neural else "formant"
        click.echo(f"{v.name:<24} {v.language:<10} {kind:<8} {v.description}")
    if not found:
        raise CalmcastError("no voices installed: install libespeak-ng or calmcast[neural]")


def _reach(p) -> tuple[str, str]:
    """Return a practice's shortest and longest sensible minutes, as people read them."""
    lo = f"{p.min_minutes:g}" if p.min_minutes else "?"
    hi = f"{p.max_minutes:g}" if p.max_minutes else "any"
    return lo, hi


@cli.command()
def practices():
    """List the built-in practices with their lengths and variables."""
    from .script import builtin_practices, load_practice

    for name in builtin_practices():
        p = load_practice(name)
        lo, hi = _reach(p)
        default = f"{p.minutes:g}" if p.minutes else "-"
        variables = ", ".join(v.name for v in p.variables) or "-"
        click.echo(f"{name:<24} {default:>4} min  ({lo} to {hi})  {p.title}")
        click.echo(f"{'':<24} variables: {variables}")


@cli.command()
@click.argument("practice")
@_length_options
@click.option("--language", default="en", show_default=True, help="The voice's language.")
def show(practice, minutes, duration, values, language):
    """Print PRACTICE's front matter and its script rendered for a length."""
    from .script import load_practice, render_script

    p = load_practice(practice)
    minutes = _minutes(minutes, duration) or p.minutes
    script = render_script(p, minutes, values, language=language)
    click.echo(f"{p.title}")
    if p.description:
        click.echo(click.wrap_text(p.description, 90))
    lo, hi = _reach(p)
    click.echo(f"length: {p.minutes or '-'} min by default, {lo} to {hi}")
    for v in p.variables:
        click.echo(f"  --set {v.name}=...  {v.help} (default: {v.default!r})")
    click.echo(f"\n# rendered for {minutes or 0:g} minutes\n")
    click.echo(script.text.strip())


@cli.command()
def ambiences():
    """List the built-in ambiences and bells with their lengths."""
    from . import sounds

    for kind, found in (("ambience", sounds.ambiences()), ("bell", sounds.bells())):
        for name, path in found.items():
            sound = sounds.load(name, kind, 44100)
            click.echo(f"{kind:<9} {name:<14} {format_clock(sound.seconds):>10}  {path.name}")


def _terminated(signum, frame) -> None:
    # As Ctrl-C does: unwinding closes ffmpeg and deletes any half-written file.
    raise KeyboardInterrupt


def main() -> None:
    """Run the CLI: one clean line per error, a traceback only with --debug."""
    import signal

    debug = "--debug" in sys.argv[1:]
    for name in ("SIGTERM", "SIGHUP"):  # clean up as Ctrl-C does
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _terminated)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("calmcast: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        if debug and isinstance(e, CalmcastError):
            import traceback

            traceback.print_exc()
        click.echo(f"calmcast: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("calmcast: interrupted", err=True)
        sys.exit(130)
