"""Speech packing: spans, windows and the map from packed time back to the recording."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from indexer.asr.audio import SAMPLE_RATE
from indexer.asr.packing import combine, packed_audio, plan, unheard_sources


def test_silence_between_regions_is_cut_and_times_map_back() -> None:
    # Two regions 20 s apart: one window, the silence between them gone but for the margins.
    packing = plan([(1.0, 3.0), (23.0, 25.0)], duration_s=30.0, pad_s=0.5, window_s=30.0)
    assert [(s.start, s.end, s.packed_start) for s in packing.spans] == [
        (0.5, 3.5, 0.0),
        (22.5, 25.5, 3.0),
    ]
    assert packing.windows == ((0.0, 6.0),)
    assert packing.interval(1.0, 1.5) == (1.5, 2.0)
    assert packing.interval(3.5, 4.0) == (23.0, 23.5)
    # A word straddling the cut belongs to the span of its midpoint, clamped into it.
    assert packing.interval(2.8, 3.4) == (22.5, 22.9)
    assert packing.interval(2.5, 3.1) == (3.0, 3.5)


def test_close_regions_merge_and_windows_never_split_a_span() -> None:
    regions = [(0.0, 10.0), (10.4, 20.0), (20.5, 31.0), (40.0, 45.0)]
    packing = plan(regions, duration_s=60.0, pad_s=0.4, window_s=30.0)
    spans = [(s.start, s.end) for s in packing.spans]
    # The first two overlap once padded and fit a window together: one span. The third would
    # make it outgrow a window, so it starts where the previous one ends instead of overlapping.
    assert spans == [(0.0, 20.4), (20.4, 31.4), (39.6, 45.4)]
    assert packing.windows == ((0.0, 20.4), (20.4, 37.2))


def test_packed_audio_holds_the_spans_samples() -> None:
    samples = np.arange(10 * SAMPLE_RATE, dtype=np.float32)
    packing = plan([(1.0, 2.0), (5.0, 6.0)], duration_s=10.0, pad_s=0.0, window_s=30.0)
    packed = packed_audio(samples, packing)
    assert len(packed) == 2 * SAMPLE_RATE
    assert packed[0] == SAMPLE_RATE
    assert packed[SAMPLE_RATE] == 5 * SAMPLE_RATE


def test_no_regions_no_windows() -> None:
    packing = plan([], duration_s=10.0, pad_s=0.4, window_s=30.0)
    assert packing.spans == ()
    assert packing.windows == ()


regions = st.lists(
    st.tuples(st.floats(0, 600), st.floats(0.05, 29.0)).map(lambda r: (r[0], r[0] + r[1])),
    max_size=40,
).map(sorted)


@given(regions, st.floats(0, 1), st.floats(0, 700), st.floats(0, 700))
def test_windows_cover_the_spans_and_times_map_in_order(
    found: list[tuple[float, float]], pad: float, a: float, b: float
) -> None:
    duration = max([end for _, end in found], default=0.0) + 1.0
    packing = plan(found, duration_s=duration, pad_s=pad, window_s=30.0)
    total = sum(s.length for s in packing.spans)
    assert all(end - start <= 30.0 + 1e-6 for start, end in packing.windows)
    assert abs(sum(end - start for start, end in packing.windows) - total) < 1e-6
    for earlier, later in zip(packing.spans, packing.spans[1:], strict=False):
        assert earlier.end <= later.start + 1e-9  # disjoint, in order: nothing decoded twice
    # Every region's speech is inside the spans.
    for start, end in found:
        covered = sum(max(0.0, min(end, s.end) - max(start, s.start)) for s in packing.spans)
        assert covered >= end - start - 1e-3
    if packing.spans:
        low, high = sorted((a % (total + 1e-9), b % (total + 1e-9)))
        mapped = packing.interval(low, high)
        assert 0.0 <= mapped[0] <= mapped[1] <= duration
        assert packing.to_recording(low) <= packing.to_recording(high)


def _tone_after_silence(onset_s: float, duration_s: float) -> np.ndarray:
    """Digital silence, then a 200 Hz tone from ``onset_s`` to the end."""
    t = np.arange(round(duration_s * SAMPLE_RATE)) / SAMPLE_RATE
    return np.where(t >= onset_s, 0.5 * np.sin(2 * np.pi * 200 * t), 0.0).astype(np.float32)


def test_a_word_timed_into_the_margin_starts_where_the_sound_does() -> None:
    # The VAD heard speech from 1.1 s (late: the sound starts at 1.0 s); the span is padded to
    # 0.7 s. Whisper times the first word of a window at the window's start (packed 0.0), which
    # maps to the padded 0.7 s: the start is moved to the sound's onset, not the margin's.
    samples = _tone_after_silence(1.0, 3.0)
    packing = plan([(1.1, 2.5)], duration_s=3.0, pad_s=0.4, window_s=30.0)
    assert packing.spans[0].start == 0.7
    start, end = packing.word_interval(samples, 0.0, 0.8)
    assert abs(start - 1.0) <= 0.01
    assert end == packing.interval(0.0, 0.8)[1]
    # A start the recogniser put inside the speech region stands as it is.
    assert packing.word_interval(samples, 0.6, 0.9) == packing.interval(0.6, 0.9)


def test_a_margin_without_sound_gives_the_vad_start_and_never_passes_the_word_end() -> None:
    samples = _tone_after_silence(2.0, 3.0)  # nothing audible before the VAD's start
    packing = plan([(2.0, 2.8)], duration_s=3.0, pad_s=0.4, window_s=30.0)
    assert packing.word_interval(samples, 0.0, 0.6)[0] == 2.0
    # A word that ends before the region starts keeps a start no later than its end.
    start, end = packing.word_interval(samples, 0.0, 0.2)
    assert start <= end


def test_the_pause_between_two_regions_of_one_span_is_not_a_word_start() -> None:
    # Two regions 0.5 s apart share a span; a word timed into the pause moves to the next
    # region's sound (it starts at 2.0 s, the VAD said 2.05 s).
    t = np.arange(4 * SAMPLE_RATE) / SAMPLE_RATE
    tone = 0.5 * np.sin(2 * np.pi * 200 * t)
    samples = np.where((t < 1.5) | (t >= 2.0), tone, 0.0).astype(np.float32)
    packing = plan([(0.5, 1.5), (2.05, 3.0)], duration_s=4.0, pad_s=0.4, window_s=30.0)
    assert len(packing.spans) == 1
    packed_pause = 1.6 - packing.spans[0].start  # recording 1.6 s, inside the pause
    start, _ = packing.word_interval(samples, packed_pause, packed_pause + 0.6)
    assert abs(start - 2.0) <= 0.01


def test_sources_share_windows_and_words_map_back_to_their_own() -> None:
    # Three short recordings' speech: 8 s, 12.8 s and 14.4 s (padded). Alone each is a window of
    # its own; combined, the first two fill one window and the third opens the next.
    first = plan([(1.0, 8.2)], duration_s=10.0, pad_s=0.4, window_s=30.0)
    second = plan([(0.5, 4.1), (6.0, 13.6)], duration_s=15.0, pad_s=0.4, window_s=30.0)
    third = plan([(0.4, 14.0)], duration_s=14.4, pad_s=0.4, window_s=30.0)
    shared = combine([first, second, third], window_s=30.0)
    assert [s.source for s in shared.spans] == [0, 1, 1, 2]
    assert shared.windows == ((0.0, 20.8), (20.8, 35.2))
    samples = [np.zeros(round(d * SAMPLE_RATE), dtype=np.float32) for d in (10.0, 15.0, 14.4)]
    assert len(packed_audio(samples, shared)) == round(35.2 * SAMPLE_RATE)
    # A word at packed 9.0-9.5 s is the second recording's, 1 s into its first span (0.1 s on).
    source, start, end = shared.place_word(samples, 9.0, 9.5)
    assert (source, round(start, 3), round(end, 3)) == (1, 1.1, 1.6)
    # A word straddling the cut between two recordings belongs to its midpoint's, clamped.
    source, start, end = shared.place_word(samples, 7.9, 8.3)
    assert (source, round(start, 3), round(end, 3)) == (1, 0.1, 0.4)
    alone = combine([first, second, third], window_s=30.0, shared=False)
    assert len(alone.windows) == 3


def test_sources_kept_together_share_windows_only_with_each_other() -> None:
    # Sources 0 and 1 (8 s and 12.8 s padded) may share; 2 and 3 are the two channels of a
    # recording kept to its own window (7.2 s and 4 s): they share it, and nobody else does,
    # although the first window has room for them.
    first = plan([(1.0, 8.2)], duration_s=10.0, pad_s=0.4, window_s=30.0)
    second = plan([(0.5, 4.1), (6.0, 13.6)], duration_s=15.0, pad_s=0.4, window_s=30.0)
    left = plan([(0.4, 6.8)], duration_s=7.2, pad_s=0.4, window_s=30.0)
    right = plan([(1.0, 4.2)], duration_s=7.2, pad_s=0.4, window_s=30.0)
    kept = combine([first, second, left, right], window_s=30.0, together=[0, 0, 1, 1])
    assert kept.windows == ((0.0, 20.8), (20.8, 32.0))
    assert [s.source for s in kept.spans] == [0, 1, 1, 2, 3]
    apart = combine([first, second, left, right], window_s=30.0, together=[0, 0, 1, 2])
    assert apart.windows == ((0.0, 20.8), (20.8, 28.0), (28.0, 32.0))
    assert combine([first, second], 30.0, together=[0, 1]).windows == ((0.0, 8.0), (8.0, 20.8))


def test_a_source_left_out_of_a_shared_window_is_unheard() -> None:
    first = plan([(0.4, 5.0)], duration_s=6.0, pad_s=0.4, window_s=30.0)
    second = plan([(0.4, 3.0)], duration_s=4.0, pad_s=0.4, window_s=30.0)
    shared = combine([first, second], window_s=30.0)
    first_words = [(0.2, 0.8), (1.0, 4.9)]  # packed; the first source's speech, to its end
    assert unheard_sources(shared, first_words, least_s=0.5, slack_s=1.0) == {1}
    # Words in the second source's span (packed 5.4 s on) make it heard.
    both = [*first_words, (5.6, 6.2), (6.4, 7.8)]
    assert unheard_sources(shared, both, least_s=0.5, slack_s=1.0) == set()
    # The first source's words stop at 2 s: its last 2.6 s of speech were left out.
    assert unheard_sources(shared, [(0.2, 2.0), *both[2:]], least_s=0.5, slack_s=1.0) == {0}
    # Alone in its windows, a source is never unheard: decoding it again gives the same.
    alone = combine([first], window_s=30.0)
    assert unheard_sources(alone, [], least_s=0.5, slack_s=1.0) == set()
