"""Every retry loop has a budget that no success elsewhere resets: a registry that accepts
every chunk and refuses every close makes a push fail, not re-upload forever."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from freight.cli import main
from freight.errors import EXIT_REGISTRY
from freight.sinks.registry import MAX_TOTAL_FAILURES
from support.faults import Fault, Reply, RequestInfo
from support.proxy import RegistryProxy

from .test_engine_properties import LayerSpec, docker_archive


class RefuseEveryClose(Fault):
    """PATCHes go through; every PUT that closes an upload gets DIGEST_INVALID."""

    def before(self, request: RequestInfo) -> Reply | None:
        if request.kind == "upload" and request.method == "PUT":
            return Reply(400, b'{"errors":[{"code":"DIGEST_INVALID","message":"no"}]}',
                         {"Content-Type": "application/json"})
        return None


def test_a_registry_refusing_every_close_fails_the_push(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from server.conftest import serving

    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "app.tar"
    docker_archive(source, [LayerSpec(1, 300_000, "tar")], "v1")
    with serving(tmp_path / "root") as live:
        proxy = RegistryProxy(live.url.removeprefix("http://")).start()
        proxy.faults.append(RefuseEveryClose())
        try:
            run = CliRunner().invoke(main, ["push", str(source), f"{proxy.host}/budget/app:v1",
                                            "--chunk-size", "100k", "-j", "1", "-q"])
        finally:
            proxy.stop()
    assert run.exit_code == EXIT_REGISTRY, run.output
    sessions = [e for e in proxy.exchanges if e.kind == "upload" and e.method == "POST"]
    assert 1 < len(sessions) <= 2 * (MAX_TOTAL_FAILURES + 1)  # config and layer, bounded
    assert len(run.stderr.strip().splitlines()) == 1
