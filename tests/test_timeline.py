"""The length solver: exact totals, every pause inside its range, spare time shared by weight."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from calmcast.errors import LengthError
from calmcast.model import Bell, Chapter, Event, Pause, Speech, Timeline
from calmcast.timeline import fit, reach, ring_out, share

RATE = 1000  # samples a second: small numbers, same arithmetic


def seg_strategy():
    lo = st.floats(min_value=0, max_value=300, allow_nan=False).map(lambda x: round(x, 3))
    return st.one_of(
        st.integers(min_value=0, max_value=20_000).map(lambda n: ("speech", n)),
        st.tuples(
            lo,
            st.one_of(
                st.none(),
                st.floats(min_value=0, max_value=600).map(lambda x: round(x, 3)),
                st.just(math.inf),
            ),
            st.sampled_from([0.5, 1, 1, 2, 3]),
        ).map(
            lambda t: (
                "pause",
                Pause(
                    t[0], t[0] if t[1] is None else max(t[0], t[1]), t[2] if t[1] is not None else 1
                ),
            )
        ),
        st.just(("bell", Bell("bowl"))),
        st.just(("chapter", Chapter("x"))),
    )


def build(items):
    segments, speech = [], []
    for kind, value in items:
        if kind == "speech":
            segments.append(Speech("x"))
            speech.append(value)
        else:
            segments.append(value)
    return segments, speech


@settings(max_examples=400, deadline=None)
@given(st.lists(seg_strategy(), max_size=30), st.floats(min_value=0, max_value=1))
def test_fit_is_exact_and_keeps_every_pause_in_range(items, where):
    segments, speech = build(items)
    lo, hi = reach(segments, speech, RATE)
    top = lo + 3_600_000 if math.isinf(hi) else hi
    target = round(lo + where * (top - lo))
    tl = fit(segments, speech, RATE, target)
    assert tl.length == target
    assert sum(e.length for e in tl.events) == target
    t = 0
    for e in tl.events:
        assert e.start == t
        t += e.length
        if isinstance(e.segment, Pause):
            p = e.segment
            assert round(p.minimum * RATE) <= e.length
            if not p.unbounded:
                assert e.length <= round(p.maximum * RATE)
        elif isinstance(e.segment, Speech):
            assert e.length in speech


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 100), st.integers(0, 500), st.sampled_from([1.0, 2.0, 3.0])),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 10_000),
)
def test_share_is_weighted_water_filling(ranges, spare):
    pauses = [Pause(lo, lo + extra, w) for lo, extra, w in ranges]
    room = [round(p.maximum * RATE) - round(p.minimum * RATE) for p in pauses]
    assume(spare <= sum(room))
    got = share(pauses, spare, RATE)
    assert sum(got) == spare
    assert all(0 <= g <= r for g, r in zip(got, room, strict=True))
    # A pause that is not full got no less per weight (within rounding) than any other pause.
    per_weight = [g / p.weight for g, p in zip(got, pauses, strict=True)]
    for i, (g, r) in enumerate(zip(got, room, strict=True)):
        if g < r:
            assert all(
                per_weight[i] >= per_weight[j] - 1 / pauses[i].weight - 1 / pauses[j].weight - 1e-9
                for j in range(len(pauses))
            )


@pytest.mark.parametrize(
    ("weights", "spare", "expected"),
    [
        ((1, 1), 100, [50, 50]),
        ((1, 2), 90, [30, 60]),
        ((1, 3), 100, [25, 75]),
        ((2, 2, 1), 100, [40, 40, 20]),
    ],
)
def test_weights_split_the_spare_time(weights, spare, expected):
    pauses = [Pause(1, math.inf, w) for w in weights]
    assert share(pauses, spare, RATE) == expected


def test_clamped_pause_passes_its_share_on():
    pauses = [Pause(0, 0.010), Pause(0, math.inf)]
    assert share(pauses, 100, RATE) == [10, 90]


def test_no_length_asked_gives_the_shortest():
    segments, speech = build([("speech", 500), ("pause", Pause(2, 10)), ("speech", 700)])
    assert fit(segments, speech, RATE).length == 3200


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (1_000, r"1s is out of reach: with this voice it can last from 3s to 11s"),
        (60_000, r"1m is out of reach: with this voice it can last from 3s to 11s"),
    ],
)
def test_unreachable_length_says_the_range(target, message):
    segments, speech = build([("speech", 500), ("pause", Pause(2, 10)), ("speech", 500)])
    with pytest.raises(LengthError, match=message):
        fit(segments, speech, RATE, target, name="test")


def test_ring_out_makes_room_for_a_closing_bell():
    segs = ring_out([Speech("x"), Bell("bowl"), Pause(4, 4, kind="lead-out")], {"bowl": 20.0})
    assert segs[-1] == Pause(16, 16, kind="ring-out")
    assert ring_out([Bell("bowl"), Speech("x"), Pause(4, 4)], {"bowl": 20.0})[-1] == Pause(4, 4)


def test_interval_bells_count_from_the_opening_bell_and_keep_clear_of_other_bells():
    from calmcast.timeline import BELL_CLEARANCE, with_interval_bells

    rate = 100
    events = (Event(Pause(3, 3), 0, 300), Event(Bell("bowl"), 300, 0),
              Event(Pause(600, 600), 300, 60_000), Event(Bell("chime"), 30_300, 0),
              Event(Bell("bowl"), 60_300, 0))  # fmt: skip
    timeline = Timeline(events, 70_000, rate)
    got = with_interval_bells(timeline, 100, "gong")
    strikes = [(e.start, e.segment.name) for e in got.events if isinstance(e.segment, Bell)]
    # From the opening bell at 3 s, every 100 s: 103, 203, 303 (the chime's place: not
    # struck again), 403, 503, 603 is the closing bell's, and none in the last 30 s.
    assert strikes == [(300, "bowl"), (10_300, "gong"), (20_300, "gong"), (30_300, "chime"),
                       (40_300, "gong"), (50_300, "gong"), (60_300, "bowl")]  # fmt: skip
    assert BELL_CLEARANCE == 10.0
