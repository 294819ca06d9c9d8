"""The upload journal: where an unfinished chunked upload stands, kept between runs."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from freight.digest import Digest
from freight.sinks.resume import Pending, UploadJournal

D = Digest.of(b"layer")
URL = "https://r.example/v2/team/app/blobs/uploads/u1?_state=abc&X-Sig=secret"


def test_an_entry_survives_the_run_and_only_its_owner_reads_it(tmp_path: Path) -> None:
    journal = UploadJournal(tmp_path, "r.example:5000")
    journal.save("team/app", D, URL, 4096)
    assert UploadJournal(tmp_path, "r.example:5000").get("team/app", D) == Pending(URL, 4096)
    (entry,) = (tmp_path / "r.example%3A5000" / "team%2Fapp").iterdir()
    assert entry.name == f"sha256-{D.encoded}"  # nothing else: no temporary file left
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600  # upload URLs may carry signatures


def test_a_newer_entry_replaces_the_older_and_forget_drops_it(tmp_path: Path) -> None:
    journal = UploadJournal(tmp_path, "r.example")
    journal.save("team/app", D, URL, 1)
    journal.save("team/app", D, URL + "&n=2", 2)
    assert journal.get("team/app", D) == Pending(URL + "&n=2", 2)
    journal.forget("team/app", D)
    assert journal.get("team/app", D) is None
    journal.forget("team/app", D)  # forgetting twice is fine


def test_entries_are_per_registry_and_repository(tmp_path: Path) -> None:
    UploadJournal(tmp_path, "one.example").save("team/app", D, URL, 1)
    assert UploadJournal(tmp_path, "two.example").get("team/app", D) is None
    assert UploadJournal(tmp_path, "one.example").get("team/other", D) is None


@pytest.mark.parametrize(("one", "other"), [("team/app", "team_app"), ("team/app", "team:app"),
                                            ("team/app", "team%2Fapp"), ("a/b_c", "a_b/c")])
def test_names_that_look_alike_never_share_an_entry(tmp_path: Path, one: str,
                                                   other: str) -> None:
    """One repository must never resume another's upload session: `team/app` and
    `team_app` once shared a journal path."""
    journal = UploadJournal(tmp_path, "r.example")
    journal.save(one, D, URL, 1)
    assert journal.get(other, D) is None
    journal.save(other, D, URL + "&other", 2)
    assert journal.get(one, D) == Pending(URL, 1)
    journal.forget(other, D)
    assert journal.get(one, D) == Pending(URL, 1)


@pytest.mark.parametrize(("one", "other"), [("r.example:5000", "r.example_5000"),
                                            ("r.example:5000/x", "r.example:5000_x")])
def test_registries_that_look_alike_never_share_an_entry(tmp_path: Path, one: str,
                                                         other: str) -> None:
    UploadJournal(tmp_path, one).save("team/app", D, URL, 1)
    assert UploadJournal(tmp_path, other).get("team/app", D) is None


@pytest.mark.parametrize("name", [".", ".."])
def test_a_dot_name_stays_inside_the_journal(tmp_path: Path, name: str) -> None:
    journal = UploadJournal(tmp_path / "uploads", name)
    journal.save(name, D, URL, 1)
    (entry,) = tmp_path.rglob("sha256-*")
    assert entry.parent.parent.parent == tmp_path / "uploads"
    assert journal.get(name, D) == Pending(URL, 1)


@pytest.mark.parametrize("content", ["{not json", '{"url": "x"}', '{"url": "x", "offset": "a"}',
                                     "[]"])
def test_a_damaged_entry_only_costs_the_resume(tmp_path: Path, content: str) -> None:
    journal = UploadJournal(tmp_path, "r.example")
    journal.save("team/app", D, URL, 1)
    (entry,) = (tmp_path / "r.example" / "team%2Fapp").iterdir()
    entry.write_text(content)
    assert journal.get("team/app", D) is None


def test_no_cache_remembers_nothing(tmp_path: Path) -> None:
    journal = UploadJournal(None, "r.example")
    journal.save("team/app", D, URL, 1)
    assert journal.get("team/app", D) is None
    journal.forget("team/app", D)


def test_the_default_journal_lives_in_the_cache(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "cache"))
    UploadJournal.default("r.example").save("team/app", D, URL, 7)
    assert (tmp_path / "cache" / "uploads" / "r.example" / "team%2Fapp" /
            f"sha256-{D.encoded}").is_file()
