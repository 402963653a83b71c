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

from . import __version__, settings
from .durations import format_clock, format_duration
from .errors import CalmcastError

log = logging.getLogger("calmcast")


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


def _values_option(f):
    return click.option(
        "--set",
        "values",
        multiple=True,
        metavar="NAME=VALUE",
        callback=_set_values,
        help="Set a practice variable (repeatable).",
    )(f)


@cli.command()
@click.argument("practice")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The MP3 to write (- for stdout). Default: output/PRACTICE.mp3.",
)
@_values_option
@settings.click_options("render")
@click.pass_context
def render(ctx, practice, output, values, **given):
    """Render PRACTICE (a built-in name or a template file) to a finished MP3."""
    from .api import default_output
    from .pipeline import render as do_render
    from .session import Output

    request, tags = settings.make(practice, values, settings.from_cli(given))
    if output is None:  # the default folder is made; a folder the user names must exist
        output = default_output(practice, request.language)
    if tags["cover"] is not None:
        tags["cover"] = Path(tags["cover"])
    from .progress import RenderProgress

    with RenderProgress(quiet=ctx.obj["quiet"]) as shown:
        result = do_render(request, Output(output, **tags), progress=shown.report)
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
            f"{result.plan.voice_shown}, made in {result.timings['total']:.1f} s",
            err=str(result.path) == "-",  # stdout carries the MP3
        )
        _say_fallbacks(result.plan)


def _say_fallbacks(p) -> None:
    """Name the lines a recorded voice had no clip of, and the voice that said them."""
    missing = p.fallbacks
    if missing:
        shown = "; ".join(f'"{text[:50]}"' for _, text in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        click.echo(f"{len(missing)} line{'s' if len(missing) > 1 else ''} said by "
                   f"{missing[0][0]}, not recorded: {shown}{more}", err=True)  # fmt: skip


@cli.command()
@click.argument("practice")
@_values_option
@settings.click_options("render", only=settings.PLAN)
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as a JSON list.")
def plan(practice, values, as_json, **given):
    """Print the timeline of PRACTICE: each segment's kind, start, length and text."""
    from .pipeline import plan as do_plan

    request, _ = settings.make(practice, values, settings.from_cli(given))
    p = do_plan(request)
    rows = p.rows()
    _say_fallbacks(p)
    if as_json:
        click.echo(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    speech = sum(r["length"] for r in rows if r["kind"] == "speech")
    lo, hi = p.reach or (p.timeline.duration, p.timeline.duration)
    longest = "any length" if math.isinf(hi) else format_duration(hi)
    click.echo(
        f"{p.practice.title}: {format_clock(p.timeline.duration)} with {p.voice_shown}, "
        f"speech {speech / p.timeline.duration:.0%}; this speech reaches "
        f"{format_duration(lo)} to {longest}"
    )
    for r in rows:
        if r["kind"] in ("breath",):
            continue
        text = r["text"] if len(r["text"]) <= 70 else r["text"][:67] + "..."
        click.echo(
            f"{format_clock(r['start']):>10}  {format_duration(r['length']):>7}  "
            f"{r['kind']:<9} {text}".rstrip()
        )


def _shard(ctx, param, value):
    if value is None:
        return None
    from .building import parse_shard

    try:
        return parse_shard(value)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx, param) from None


@cli.command()
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="The folder to build into. Default: output/COURSE-TITLE.")  # fmt: skip
@click.option("-j", "--jobs", type=click.IntRange(1, 256), metavar="N",
              help="Tracks made at once, each in its own process. Default: the cores.")  # fmt: skip
@click.option("--force", is_flag=True, help="Make every track again, even those up to date.")
@click.option("--check", "check_only", is_flag=True,
              help="Check the manifest and every track without speaking; render nothing.")  # fmt: skip
@click.option("--stale", is_flag=True,
              help="With --check: fail, changing nothing, if any output is missing or out of date.")  # fmt: skip
@click.option("--shard", metavar="K/N", callback=_shard,
              help="Build only the Kth of N slices of the files (for a CI matrix); no feed or page.")  # fmt: skip
@click.option("--index-only", is_flag=True,
              help="Write the feed, page, playlist and manifest from the files already made.")  # fmt: skip
@click.option("--trust", is_flag=True,
              help="Let the manifest name files outside its own folder (only for your own).")  # fmt: skip
@click.pass_context
def build(ctx, manifest, folder, jobs, force, check_only, stale, shard, index_only, trust):
    """Build a course MANIFEST (TOML) into a folder to publish as it is.

    Beside each MP3 go its captions (.vtt, .srt) and chapters (.chapters.json); in the
    folder, a podcast feed (feed.xml), a listening page (index.html), playlist.m3u8 and
    manifest.json. Only what changed is made again.
    """
    from .building import build as do_build
    from .course import check, default_folder, load_course
    from .records import stale as find_stale

    if stale and not check_only:
        raise click.UsageError("--stale goes with --check")
    if shard and index_only:
        raise click.UsageError("give --shard or --index-only, not both")
    course = load_course(manifest, trusted=trust)
    folder = folder or default_folder(course)
    if check_only:
        if stale:
            out = find_stale(course, folder)
            if out:
                for name in out:
                    click.echo(f"{folder / name}: missing or out of date")
                raise CalmcastError(f"{folder}: {len(out)} outputs missing or out of date")
            click.echo(f"{folder}: {len(course.tracks)} files, all up to date")
            return
        check(course)
        click.echo(f"{manifest}: {len(course.tracks)} files, all fine")
        return
    from .progress import BuildProgress

    progress = BuildProgress(len(course.tracks), quiet=ctx.obj["quiet"])
    with progress:
        done = do_build(course, folder, force=force, jobs=jobs, shard=shard,
                        index_only=index_only, progress=progress.report)  # fmt: skip
    if not ctx.obj["quiet"]:
        progress.summary(done, folder, shard)


@cli.group(invoke_without_command=True)
@click.option("--voices", "voices_dir", type=click.Path(file_okay=False), default=None,
              help="The folder of recorded voices. Default: $CALMCAST_VOICES, else the "
              "user's data folder.")
@click.pass_context
def voices(ctx, voices_dir):
    """List the installed voices of every backend (recorded ones too)."""
    import os

    from .voices import list_voices

    if voices_dir:
        os.environ["CALMCAST_VOICES"] = voices_dir
    if ctx.invoked_subcommand is not None:
        return
    found = list_voices()
    for v in found:
        kind = "neural" if v.neural else "recorded" if v.name.startswith("recorded:") else "formant"
        click.echo(f"{v.name:<24} {v.language:<10} {kind:<8} {v.description}")
    if not found:
        raise CalmcastError("no voices installed: install libespeak-ng or calmcast[neural]")


@voices.command("import")
@click.argument("name")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--practice", required=True, help="The practice the lines were read from.")
@click.option("--lines", "numbers", metavar="N-M,...",
              help="A take of just these lines (numbers as `calmcast lines` prints them).")
@_values_option
def voices_import(name, files, practice, numbers, values):
    """Add recordings to the voice NAME: one continuous take of the lines in the order
    `calmcast lines` prints them, or one file a line named by its id (3f9a2c.m4a,
    07-3f9a2c.wav), in any format ffmpeg reads."""
    from pathlib import Path

    from .voices.recorded import import_files

    chosen = _numbers(numbers) if numbers else None
    voice, added, again = import_files(name, [Path(f) for f in files], practice, values,
                                       numbers=chosen, said=click.echo)  # fmt: skip
    click.echo(f"recorded:{voice.name}: {len(added)} lines added, {len(again)} recorded again, "
               f"{len(voice.lines)} in all ({voice.path})")  # fmt: skip


def _numbers(text: str) -> set[int]:
    """Return the line numbers `12-14,20` names."""
    out: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            a, b = int(first), int(last or first)
        except ValueError:
            raise click.BadParameter(f"{part.strip()!r} is not a line number or a range like "
                                     "12-14", param_hint="--lines") from None  # fmt: skip
        if not 1 <= a <= b <= 100000:
            raise click.BadParameter(f"{part.strip()!r}: lines count from 1, a range upwards",
                                     param_hint="--lines")  # fmt: skip
        out.update(range(a, b + 1))
    return out


@voices.command("status")
@click.argument("name")
@click.option("--practice", required=True, help="The practice to check the voice against.")
@_values_option
def voices_status(name, practice, values):
    """Show which lines of PRACTICE the voice NAME has recorded, and which it lacks."""
    from .lines import script_lines
    from .practice import load_practice
    from .voices.recorded import Folder, find

    voice = Folder.open(find(name))
    language = load_practice(practice).language
    if voice.language != language:
        raise CalmcastError(f"recorded:{voice.name} speaks {voice.language}; {practice} is in "
                            f"{language}")  # fmt: skip
    lines = script_lines(practice, values)
    missing = [(n, line) for n, line in enumerate(lines, 1) if voice.clip(line.id) is None]
    click.echo(f"recorded:{voice.name}: {len(lines) - len(missing)} of {len(lines)} lines of "
               f"{practice} recorded")  # fmt: skip
    for n, line in missing:
        note = " (holds the listener's " + ", ".join(line.holds) + ")" if line.holds else ""
        click.echo(f"  missing {n:>3}  {line.id}  {line.text[:70]}{note}")


@voices.command("remove")
@click.argument("name")
def voices_remove(name):
    """Remove the recorded voice NAME and its clips."""
    from .voices.recorded import remove

    click.echo(f"removed {remove(name)}")


def _reach(p) -> tuple[str, str]:
    """Return a practice's shortest and longest sensible minutes, as people read them."""
    lo = f"{p.min_minutes:g}" if p.min_minutes else "?"
    hi = f"{p.max_minutes:g}" if p.max_minutes else "any"
    return lo, hi


@cli.command()
@click.option("--language", metavar="LANG", help="Only the practices written in LANG (e.g. de).")
def practices(language):
    """List the built-in practices with their languages, lengths and variables.

    English practices are named bare (settling), the others by their language (de/settling);
    `--language de` on render, plan or a manifest picks a practice's version in it.
    """
    from .languages import name_of
    from .practice import builtin_languages, builtin_practices, load_practice

    if language is not None:
        language = settings.parse("language", language)
    names = builtin_practices(language)
    if not names:
        raise CalmcastError(f"no built-in practices in {language} (there are some in "
                            f"{', '.join(builtin_languages())})")  # fmt: skip
    for name in names:
        p = load_practice(name)
        lo, hi = _reach(p)
        default = f"{p.minutes:g}" if p.minutes else "-"
        variables = ", ".join(v.name for v in p.variables) or "-"
        click.echo(f"{name:<24} {p.language:<3} {default:>4} min  ({lo} to {hi})  {p.title}")
        click.echo(f"{'':<28} {name_of(p.language)}; variables: {variables}")


@cli.command()
@click.argument("script")
@click.option("-o", "--output", metavar="FILE.j2",
              help="The template to write. Default: SCRIPT's name with .j2, beside it.")
@click.option("--format", "kind", type=click.Choice(["txt", "md", "ssml", "apg"]),
              help="How to read SCRIPT. Default: by its suffix and a look at it.")
@click.option("--voice", metavar="NAME", help="The voice its lengths are measured with.")
def convert(script, output, kind, voice):
    """Make a practice template from SCRIPT, a plain-text, Markdown or SSML script.

    Prints what it made of each note, line by line; a length the script states becomes the
    shortest of an elastic silence, so the practice reaches other lengths.
    """
    from .convert import make_template
    from .output import Destination

    target = Path(output) if output else Path(script).with_suffix(".j2")
    dest = Destination(target, [script], suffixes=(".j2", ".jinja"), what="a template")
    made = make_template(script, kind, voice)
    for line in made.report:
        click.echo(line)
    tmp = dest.create()
    try:
        tmp.write_text(made.template, encoding="utf-8")
        dest.commit()
    except BaseException:
        dest.discard()
        raise
    reach = (f"; made for {made.min_minutes:g} to {made.max_minutes:g} min" +
             (" (it can grow without end)" if math.isinf(made.hi) else "")
             if made.min_minutes is not None else "; its length is fixed")  # fmt: skip
    click.echo(f"{target}: {len(made.report)} notes; {format_clock(made.minutes * 60)} as "
               f"written{reach}", err=True)


@cli.command()
@click.argument("practice")
@_values_option
@settings.click_options("render", only=(*settings.LENGTH, "language", "format"))
def show(practice, values, **given):
    """Print PRACTICE's front matter and its script rendered for a length."""
    from .practice import load_practice
    from .script import render_script

    chosen = settings.from_cli(given)
    p = load_practice(practice, chosen.get("language"), chosen.get("format"))
    minutes = chosen.get("minutes", chosen.get("duration")) or p.minutes
    script = render_script(p, minutes, values)
    click.echo(f"{p.title}")
    if p.description:
        click.echo(click.wrap_text(p.description, 90))
    lo, hi = _reach(p)
    click.echo(f"length: {p.minutes or '-'} min by default, {lo} to {hi}; language: {p.language}")
    for v in p.variables:
        shown = "|".join(v.choices) if v.choices else "..."
        click.echo(f"  --set {v.name}={shown}  {v.help} (default: {v.default!r})")
    click.echo(f"\n# rendered for {minutes or 0:g} minutes\n")
    click.echo(script.text.strip())


@cli.command()
@click.argument("practice")
@_values_option
@settings.click_options("render", only=("language", "format"))
@click.option("--json", "as_json", is_flag=True, help="Print the lines as a JSON list.")
def lines(practice, values, as_json, **given):
    """Print every line PRACTICE can speak, at any length and choice: a script to record.

    --set holds a variable at one value (one posture, one ending) and lists only its lines.
    """
    from .lines import page, script_lines
    from .practice import load_practice

    chosen = settings.from_cli(given)
    p = load_practice(practice, chosen.get("language"), chosen.get("format"))
    found = script_lines(practice, values, chosen.get("language"), chosen.get("format"))
    if as_json:
        click.echo(json.dumps([line.as_dict(n) for n, line in enumerate(found, 1)], indent=1,
                              ensure_ascii=False))  # fmt: skip
        return
    click.echo(page(p, found), nl=False)


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
