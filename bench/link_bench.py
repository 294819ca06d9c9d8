"""Link benchmark: pushing over a network of limited speed, streamed or not, against skopeo.

    python bench/link_bench.py [--runs 3] [--rate-mbit 1000 200]

push_bench.py pushes to a registry on loopback, where the "network" is faster than any
compressor and the registry shares the pusher's two cores. Real pushes go to a registry
elsewhere, through a link slower than compression. This benchmark puts a throttling relay
(this process, asyncio) between the pusher and a fresh distribution registry, so bytes
reach the registry at most at `--rate-mbit` in each direction, shared by all connections.

It measures what `freight push --stream` is for (the default for registries that are not
on loopback): a layer goes up while it is compressed, instead of after. Rows:

- freight --stream, freight --no-stream, skopeo copy: a cold push of the ~267 MB app image;
- freight --stream with an empty cache to a registry that already holds the image (a fresh
  CI runner): the digests are known only once compressed, so what was streamed meanwhile is
  wasted. The "MB over the link" column shows how much.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator

from bench_cli import add_common_args, run_main
from bench_procs import Registry, free_port, fresh_registry
from bench_report import ToolResult, compare_table
from bench_session import bench_session, load_archives, results_json, spread, step, write_report
from push_bench import Bench, _warm_page_cache, timed

REPO, TAG = "bench/app", "1"
CHUNK = 256 << 10  # bytes relayed per read (bigger: less of the relay's own CPU)


class _Pacer:
    """One direction of the link: hands out send times so bytes never exceed the rate."""

    def __init__(self, bytes_per_s: float) -> None:
        self._rate, self._free_at = bytes_per_s, 0.0
        self.total = 0

    async def take(self, n: int) -> None:
        now = time.monotonic()
        start = max(now, self._free_at)
        self._free_at = start + n / self._rate
        self.total += n
        if start > now:
            await asyncio.sleep(start - now)


class ThrottledLink:
    """A TCP relay on loopback to `upstream`, at most `mbit` per second each way."""

    def __init__(self, upstream: str, mbit: float) -> None:
        self.upstream, self.port = upstream, free_port()
        self.host = f"127.0.0.1:{self.port}"
        rate = mbit * 1e6 / 8
        self.up, self.down = _Pacer(rate), _Pacer(rate)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ThrottledLink:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        async def cancel_connections() -> None:
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_connections(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = self.upstream.rsplit(":", 1)
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        for w in (writer, up_writer):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with contextlib.suppress(asyncio.CancelledError):  # the link is shutting down
            await asyncio.gather(self._pipe(reader, up_writer, self.up),
                                 self._pipe(up_reader, writer, self.down))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    pacer: _Pacer) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(CHUNK):
                await pacer.take(len(data))
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()


@contextlib.contextmanager
def linked_registry(bench: Bench, mbit: float) -> Iterator[tuple[Registry, ThrottledLink]]:
    with fresh_registry(bench.registry_parent) as registry, \
            ThrottledLink(registry.host, mbit) as link:
        yield registry, link


def _freight(bench: Bench, host: str, *extra: str) -> list[str]:
    return [*bench.freight, "push", str(bench.archives.app), f"{host}/{REPO}:{TAG}", "--quiet",
            *extra]


def rows_for(mbit: float) -> list[tuple[str, str]]:
    """(row name, how): a freight --stream/--no-stream flag, or skopeo."""
    at = f"@ {mbit:g} Mbit/s"
    return [(f"freight --stream {at}", "--stream"),
            (f"freight --no-stream {at}", "--no-stream"),
            (f"skopeo copy {at}", "skopeo"),
            (f"freight --stream, empty cache {at} (registry has it)", "--stream"),
            (f"freight --no-stream, empty cache {at} (registry has it)", "--no-stream")]


def push_once(bench: Bench, mbit: float, how: str, seeded: bool, result: ToolResult,
              sent_mb: list[float]) -> None:
    """One push over a fresh link to a fresh registry (seeded: holding the image already)."""
    with linked_registry(bench, mbit) as (registry, link):
        cache = bench.new_cache()
        if seeded:  # straight to the registry, not over the link
            timed(_freight(bench, registry.host), env=bench.cache_env(cache),
                  scratch=bench.scratch)
            shutil.rmtree(cache, ignore_errors=True)
            cache = bench.new_cache()  # ...and then forgotten, as on a fresh CI runner
        if how == "skopeo":
            argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                    f"docker-archive:{bench.archives.app}", f"docker://{link.host}/{REPO}:{TAG}"]
        else:
            argv = _freight(bench, link.host, how)
        sample = timed(argv, env=bench.cache_env(cache), scratch=bench.scratch)
        if sample.ok and not registry.has_manifest(REPO, TAG):
            sample.ok, sample.detail = False, "no manifest for the tag afterwards"
        result.samples.append(sample)
        sent_mb.append(link.up.total / 1e6)
        shutil.rmtree(cache, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--rate-mbit", type=float, nargs="+", default=[1000.0, 200.0],
                        help="link speeds to measure, in Mbit/s (default: 1000 200)")
    args = parser.parse_args(argv)
    return run_main("link_bench", args, _session)


def _session(args: argparse.Namespace) -> int:
    archives = load_archives(args.workdir.resolve(), args.mirror)
    with bench_session(args, archives) as bench:
        _warm_page_cache(archives.app)
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        results: list[ToolResult] = []
        sent: dict[str, list[float]] = {}
        for mbit in args.rate_mbit:
            rows = [(ToolResult(name, how), how) for name, how in rows_for(mbit)]
            for result, _ in rows:
                sent[result.name] = []
            for n in range(args.runs):
                print(f"{mbit:g} Mbit/s, round {n + 1}/{args.runs}", flush=True)
                for result, how in rows:
                    seeded = result.name.endswith("(registry has it)")
                    step(bench, result, functools.partial(
                        push_once, bench, mbit, how, seeded, result, sent[result.name]))
            results.extend(result for result, _ in rows)
        base = {r.name: r.name.replace("--no-stream", "--stream").replace("skopeo copy",
                                                                          "freight --stream")
                for r in results}
        table = compare_table(results, base, "÷ freight --stream")
        link = {name: round(sorted(v)[len(v) // 2], 1) for name, v in sent.items() if v}
        report = {
            "started": started, "runs": args.runs, "image": archives.meta,
            "niceness": os.getpriority(os.PRIO_PROCESS, 0),
            "background_busy_cores": spread(bench.background),
            "freight": bench.freight_source, "results": results_json(results),
            "table": table, "mb_over_link_median": link,
        }
        out = write_report("link", report)
        print("\n" + table + "\n\nMB sent over the link (median):")
        for name, mb in link.items():
            print(f"  {name}: {mb} MB")
        print(f"\nraw results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
