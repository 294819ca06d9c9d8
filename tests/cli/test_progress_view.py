"""The progress display's model and drawing, fed engine events directly (no terminal)."""

from __future__ import annotations

import io
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from freight.cli.output import progress_for, render
from freight.cli.progress_view import (
    MAX_ROWS,
    Frame,
    Tracker,
    amount_text,
    human_bytes,
    shorten,
    summary_text,
)
from freight.progress import Phase, Plan, Summary
from freight.results import Action

MB = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def drawn(frame: Frame, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(render(frame, width))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def test_the_overall_total_is_the_plans_from_the_start_and_never_overshoots() -> None:
    tracker = Tracker()
    tracker.begin(Plan("push", 1, 3, 800 * MB))
    seen = []
    for _ in range(10):
        tracker.overall(100 * MB)  # compression reads and uploads must not both count here
        frame = tracker.frame()
        assert frame.plan is not None
        seen.append((frame.plan.total, frame.done))
    assert {total for total, _ in seen} == {800 * MB}
    assert [done for _, done in seen] == sorted(done for _, done in seen)
    assert seen[-1][1] == 800 * MB
    assert "800.0/800.0 MB" in drawn(tracker.frame())


def test_compression_and_upload_rows_do_not_add_to_the_overall_total() -> None:
    tracker = Tracker()
    tracker.begin(Plan("push", 1, 1, 800 * MB))
    tracker.blob_start("l#convert", "layer 1", 800 * MB, Phase.COMPRESS)
    tracker.blob_advance("l#convert", 800 * MB)
    tracker.overall(800 * MB)
    tracker.blob_done("l#convert", None)
    tracker.blob_start("l", "layer 1", 500 * MB, Phase.UPLOAD)
    tracker.blob_advance("l", 500 * MB)
    text = drawn(tracker.frame())
    assert "800.0/800.0 MB" in text
    assert "1.3 GB" not in text


def test_at_most_max_rows_are_shown_oldest_first_and_the_rest_counted() -> None:
    tracker = Tracker()
    tracker.begin(Plan("push", 1, 41, 41 * MB))
    for i in range(41):
        tracker.blob_start(f"k{i}", f"layer {i}", MB, Phase.UPLOAD)
    frame = tracker.frame()
    assert [row.label for row in frame.rows] == [f"layer {i}" for i in range(MAX_ROWS)]
    assert frame.hidden == 41 - MAX_ROWS
    text = drawn(frame)
    assert f"… and {41 - MAX_ROWS} more" in text
    assert len([line for line in text.splitlines() if "upload" in line]) == MAX_ROWS


def test_finished_rows_collapse_into_counts_in_a_fixed_order() -> None:
    tracker = Tracker()
    tracker.begin(Plan("push", 1, 5, 5 * MB))
    for i in range(3):
        tracker.blob_start(f"k{i}", f"layer {i}", MB, Phase.UPLOAD)
        tracker.blob_done(f"k{i}", Action.UPLOADED)
    tracker.blob_done("k3", Action.MOUNTED)  # found elsewhere: never had a row
    tracker.blob_done("k4", Action.SKIPPED)
    frame = tracker.frame()
    assert frame.rows == ()
    assert frame.counts == ((Action.UPLOADED, 3), (Action.SKIPPED, 1), (Action.MOUNTED, 1))
    assert "3 uploaded, 1 skipped, 1 mounted" in drawn(frame)


def test_a_phase_that_ends_removes_its_row_without_counting_a_blob() -> None:
    tracker = Tracker()
    tracker.blob_start("k#convert", "compress layer 1", MB, Phase.COMPRESS)
    tracker.blob_done("k#convert", None)
    assert tracker.frame().rows == ()
    assert tracker.frame().counts == ()


def test_rows_say_their_phase_so_pull_rows_never_say_upload() -> None:
    tracker = Tracker()
    tracker.begin(Plan("pull", 1, 2, 2 * MB))
    tracker.blob_start("a", "upload layer 1 of app:1", MB, Phase.DOWNLOAD)  # today's label
    tracker.blob_start("b", "layer 2 of app:1", MB, Phase.WRITE)
    text = drawn(tracker.frame())
    assert "upload" not in text
    words = " ".join(text.split())
    assert "download layer 1 of app:1" in words and "write layer 2 of app:1" in words


def test_a_no_op_run_shows_no_zero_totals_or_question_marks() -> None:
    tracker = Tracker()
    tracker.begin(Plan("push", 1, 3, 30 * MB))
    for i in range(3):
        tracker.overall(10 * MB)
        tracker.blob_done(f"k{i}", Action.SKIPPED)
    text = drawn(tracker.frame())
    assert "30.0/30.0 MB" in text
    assert "3 skipped" in text
    assert "0/0" not in text and "?" not in text
    empty = Tracker()
    empty.begin(Plan("push", 1, 0, 0))
    assert "0/0" not in drawn(empty.frame()) and "?" not in drawn(empty.frame())
    summary = summary_text(Summary("push", 1, 0, 3, 0, 0, 0.4))
    assert summary == "pushed 1 image: 0 blobs sent, 3 skipped, 0 mounted; 0 B in 0.4 s"


def test_before_any_plan_the_display_shows_bytes_moved_and_no_total() -> None:
    clock = Clock()
    tracker = Tracker(clock=clock)
    tracker.blob_start("k", "upload layer 1", 4 * MB, Phase.UPLOAD)
    tracker.blob_advance("k", 2 * MB)
    clock.now += 2
    text = drawn(tracker.frame())
    assert "working" in text and "1.0 MB/s" in text and "0:02" in text
    assert "2.0/4.0 MB" in text


def test_rate_counts_bytes_sent_not_bytes_compressed() -> None:
    clock = Clock()
    tracker = Tracker(clock=clock)
    tracker.begin(Plan("push", 1, 1, 10 * MB))
    tracker.blob_start("k#convert", "layer 1", 10 * MB, Phase.COMPRESS)
    tracker.blob_advance("k#convert", 10 * MB)
    tracker.blob_start("k", "layer 1", 4 * MB, Phase.UPLOAD)
    tracker.blob_advance("k", 4 * MB)
    clock.now += 4
    assert tracker.frame().moved == 4 * MB
    assert "1.0 MB/s" in drawn(tracker.frame())


def test_a_restarted_row_keeps_its_place_and_never_shows_more_than_its_total() -> None:
    tracker = Tracker()
    tracker.blob_start("a", "layer 1", MB, Phase.UPLOAD)
    tracker.blob_start("b", "layer 2", MB, Phase.UPLOAD)
    tracker.blob_advance("a", 3 * MB)  # a retry re-sends what was sent
    assert tracker.frame().rows[0].done == MB
    tracker.blob_start("a", "layer 1", MB, Phase.UPLOAD)
    assert [(r.label, r.done) for r in tracker.frame().rows] == [("layer 1", 0), ("layer 2", 0)]


def test_events_from_many_threads_are_all_counted() -> None:
    tracker = Tracker()
    tracker.begin(Plan("push", 1, 8, 8 * 2000))
    for i in range(8):
        tracker.blob_start(f"k{i}", f"layer {i}", 2000 * 8, Phase.UPLOAD)

    def work(key: str) -> None:
        for _ in range(2000):
            for i in range(8):
                tracker.blob_advance(f"k{i}", 1)
            tracker.overall(1)

    threads = [threading.Thread(target=work, args=(f"k{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    frame = tracker.frame(max_rows=8)
    assert [row.done for row in frame.rows] == [16000] * 8
    assert frame.done == 16000


def test_summary_line_names_images_blobs_bytes_time_and_rate() -> None:
    line = summary_text(Summary("push", 2, 12, 3, 1, 800 * MB, 20.0))
    assert line == ("pushed 2 images: 12 blobs sent, 3 skipped, 1 mounted; "
                    "800.0 MB in 20.0 s (40.0 MB/s)")
    assert summary_text(Summary("pull", 1, 1, 0, 0, 1500, 1.0)).startswith(
        "pulled 1 image: 1 blob downloaded,")
    dry = summary_text(Summary("copy", 1, 4, 2, 1, 5 * MB, 0.1, dry_run=True))
    assert dry == "dry run: would copy 1 image: 4 blobs to send, 2 skipped, 1 to mount; 5.0 MB"


def test_sizes_read_as_docker_prints_them() -> None:
    assert [human_bytes(n) for n in (0, 999, 1000, 812_400_000, 2 * 10**9)] == [
        "0 B", "999 B", "1.0 kB", "812.4 MB", "2.0 GB"]
    assert amount_text(312_400_000, 800 * MB) == "312.4/800.0 MB"
    assert amount_text(12, 900) == "12/900 B"
    assert amount_text(0, 0) == ""


def test_the_labels_of_todays_engine_keep_their_parentheses() -> None:
    label = ("layer 12 of registry.example.com/team/app:1.2.3 "
             "(0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/layer.tar)")
    short = shorten(label, 48)
    assert len(short) <= 48
    assert short.startswith("layer 12 of") and short.endswith("/layer.tar)")
    assert short.count("(") == short.count(")") == 1


@given(st.text(st.sampled_from("ab /:.-"), min_size=1, max_size=80),
       st.text(st.sampled_from("cd/."), min_size=1, max_size=80), st.integers(1, 90))
def test_shortened_labels_fit_and_keep_their_brackets_paired(head: str, inner: str,
                                                              width: int) -> None:
    label = f"{head} ({inner})"
    short = shorten(label, width)
    assert len(short) <= width
    if len(label) <= width:
        assert short == label
    elif width >= 12:
        assert short.count("(") == short.count(")") == 1 and short.endswith(")")


@pytest.mark.parametrize("quiet", [False, True])
def test_without_a_terminal_notes_and_the_summary_go_to_stderr(
        quiet: bool, capsys: pytest.CaptureFixture[str]) -> None:
    with progress_for(quiet=quiet) as progress:
        progress.begin(Plan("push", 1, 1, MB))
        progress.blob_start("k", "layer 1", MB, Phase.UPLOAD)
        progress.blob_advance("k", MB)
        progress.note("the archive has no arm64 image")
        progress.blob_done("k", Action.UPLOADED)
        progress.end(Summary("push", 1, 1, 0, 0, MB, 0.5))
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "freight: note: the archive has no arm64 image"
    summary = ["freight: pushed 1 image: 1 blob sent, 0 skipped, 0 mounted; 1.0 MB in 0.5 s "
               "(2.0 MB/s)"]
    assert lines[1:] == ([] if quiet else summary)


def test_no_summary_after_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), progress_for(quiet=False) as progress:
        progress.begin(Plan("push", 1, 1, MB))
        raise RuntimeError("the registry went away")
    assert capsys.readouterr().err == ""


def test_a_narrow_terminal_keeps_the_layer_number_and_the_more_and_counts_lines() -> None:
    tracker = Tracker()
    tracker.begin(Plan("pull", 2, 41, 812 * MB))
    for i in range(9):
        tracker.blob_start(f"k{i}", f"layer {i + 1} of registry.example.com/team/app:1.2.3 "
                           f"(sha256:{'ab' * 32})", 12 * MB, Phase.DOWNLOAD)
    tracker.blob_done("x", Action.SKIPPED)
    tracker.blob_done("y", Action.DOWNLOADED)
    text = drawn(tracker.frame(), width=80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "download layer 1 " in text and "download layer 6 " in text
    assert "  … and 3 more" in text
    assert "  1 downloaded, 1 skipped" in text  # what moved first
