"""What `freight push` prints on stderr off a terminal: JSON events, notes, the summary."""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from freight.cli.progress_json import JsonLines
from freight.progress import Phase, Plan, Summary
from freight.testing import ImageSet, random_image
from support.archives import read_member
from support.freightcli import UserDirs, run_freight

MB = 1 << 20


def test_json_lines_are_one_object_each_and_the_overall_ones_few() -> None:
    out = io.StringIO()
    events = JsonLines(out)
    events.begin(Plan("push", 1, 8, 8_000))
    events.blob_start("k", "layer 1", 10, Phase.COMPRESS)
    events.blob_advance("k", 10)  # per MiB: not written
    events.blob_done("k", None)

    def work() -> None:
        for _ in range(1000):
            events.overall(1)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events.note("a note")
    events.end(Summary("push", 1, 8, 0, 0, 8_000, 1.5))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {"event": "begin", "verb": "push", "images": 1, "blobs": 8, "total": 8000}
    assert lines[1] == {"event": "blob_start", "key": "k", "label": "layer 1",
                        "phase": "compress", "total": 10}
    assert lines[2] == {"event": "blob_done", "key": "k", "action": None}
    overall = [line for line in lines if line["event"] == "overall"]
    assert len(overall) <= 101
    assert [o["done"] for o in overall] == sorted(o["done"] for o in overall)
    assert overall[-1] == {"event": "overall", "done": 8000, "total": 8000}
    assert lines[-2] == {"event": "note", "text": "a note"}
    assert lines[-1]["event"] == "end" and lines[-1]["uploaded"] == 8


@pytest.fixture
def synth(tmp_path: Path) -> ImageSet:
    return random_image(tmp_path / "synth.tar", layers=[MB // 5] * 5, tags=["synth/small:1"])


def push(image: ImageSet, host: str, dirs: UserDirs, *options: str) -> tuple[str, str]:
    done = run_freight("push", str(image.path), f"{host}/synth/small:1", *options, dirs=dirs)
    assert done.returncode == 0, done.describe()
    return done.stdout, done.stderr


def test_json_events_of_a_real_push_count_what_the_results_say(
        synth: ImageSet, serve_registry: Callable[[], str], tmp_path: Path) -> None:
    out, err = push(synth, serve_registry(), UserDirs.under(tmp_path / "u"), "--progress",
                    "json", "--json")
    events = [json.loads(line) for line in err.splitlines()]  # every line is one object
    results = [json.loads(line) for line in out.splitlines()]
    done = Counter(e["action"] for e in events if e["event"] == "blob_done" and e["action"])
    assert done == Counter(b["action"] for r in results for b in r["blobs"])
    starts = [e for e in events if e["event"] == "blob_start"]
    assert {e["phase"] for e in starts} <= {"compress", "upload"}
    assert not any(e["label"].startswith(("upload ", "compress ")) for e in starts)  # no verb


def test_a_quiet_push_prints_nothing_on_stderr(
        synth: ImageSet, serve_registry: Callable[[], str], tmp_path: Path) -> None:
    out, err = push(synth, serve_registry(), UserDirs.under(tmp_path / "u"), "--quiet")
    assert err == ""
    assert out.startswith("127.0.0.1:")


def test_json_events_of_a_real_push_begin_with_the_plan_and_end_with_the_summary(
        synth: ImageSet, serve_registry: Callable[[], str], tmp_path: Path) -> None:
    _, err = push(synth, serve_registry(), UserDirs.under(tmp_path / "u"), "--progress", "json")
    events = [json.loads(line) for line in err.splitlines()]
    config = read_member(synth.path, synth.image.config_digest.removeprefix("sha256:") + ".json")
    total = sum(synth.image.layer_sizes) + len(config)
    assert events[0] == {"event": "begin", "verb": "push", "images": 1, "blobs": 6,
                         "total": total}
    overall = [e for e in events if e["event"] == "overall"]
    assert overall[-1] == {"event": "overall", "done": total, "total": total}
    assert events[-1]["event"] == "end"
    assert (events[-1]["uploaded"], events[-1]["skipped"], events[-1]["mounted"]) == (6, 0, 0)


def test_off_a_terminal_a_push_ends_with_the_summary_line_also_when_nothing_moves(
        synth: ImageSet, serve_registry: Callable[[], str], tmp_path: Path) -> None:
    host, dirs = serve_registry(), UserDirs.under(tmp_path / "u")
    _, err = push(synth, host, dirs)
    assert err.splitlines()[-1].startswith("freight: pushed 1 image: 6 blobs sent, 0 skipped, "
                                           "0 mounted; ")
    _, err = push(synth, host, dirs)
    assert err.splitlines()[-1].startswith("freight: pushed 1 image: 0 blobs sent, 6 skipped, "
                                           "0 mounted; 0 B in ")
    assert "?" not in err and "0/0" not in err


def test_a_pulls_rows_say_download_never_upload(
        synth: ImageSet, serve_registry: Callable[[], str], tmp_path: Path) -> None:
    host, dirs = serve_registry(), UserDirs.under(tmp_path / "u")
    push(synth, host, dirs, "--quiet")
    done = run_freight("pull", f"{host}/synth/small:1", str(tmp_path / "out.tar"),
                       "--progress", "json", dirs=dirs)
    assert done.returncode == 0, done.describe()
    events = [json.loads(line) for line in done.stderr.splitlines()]
    phases = {e["phase"] for e in events if e["event"] == "blob_start"}
    assert phases and phases <= {"download", "decompress", "write"}, phases
    assert not any(e["label"].startswith("upload") for e in events if "label" in e)
