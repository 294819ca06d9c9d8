"""The push benchmark's data model and its markdown: samples, per-tool results, targets."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Sample:
    """One timed run of one tool."""

    seconds: float
    rss_mb: float | None
    ok: bool
    detail: str = ""
    cpu_s: float | None = None  # user + system of the child: robust to a busy neighbour
    load1: float = 0.0  # 1-minute load average just before the run (2 cores here)
    background: float | None = None  # cores other processes kept busy just before the run
    server_rss_mb: float | None = None  # peak RSS of the registry/daemon during the run
    server_cpu_s: float | None = None  # CPU time of the registry/daemon during the run


@dataclass
class ToolResult:
    """All runs of one tool on one image."""

    name: str
    command: str
    samples: list[Sample] = field(default_factory=list)
    note: str = ""

    def ok_seconds(self) -> list[float]:
        return [s.seconds for s in self.samples if s.ok]

    def median(self) -> float | None:
        times = self.ok_seconds()
        return statistics.median(times) if times else None

    def median_cpu(self) -> float | None:
        values = [s.cpu_s for s in self.samples if s.ok and s.cpu_s is not None]
        return statistics.median(values) if values else None

    def peak_rss(self) -> float | None:
        values = [s.rss_mb for s in self.samples if s.ok and s.rss_mb is not None]
        return max(values) if values else None

    def peak_server_rss(self) -> float | None:
        values = [s.server_rss_mb for s in self.samples if s.ok and s.server_rss_mb is not None]
        return max(values) if values else None

    def median_server_cpu(self) -> float | None:
        values = [s.server_cpu_s for s in self.samples if s.ok and s.server_cpu_s is not None]
        return statistics.median(values) if values else None


def _fmt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.2f}{unit}"


def table(results: list[ToolResult], base: dict[str, float | None]) -> str:
    """Markdown: tool, median, min, max, peak RSS, ratios to freight gzip and none."""
    rows = ["| tool | median s | min s | max s | peak RSS MB | CPU s (median) "
            "| ÷ freight gzip | ÷ freight none | ok runs |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        times, med = r.ok_seconds(), r.median()
        other_image = r.name.startswith("freight 800 MB")  # not comparable with 250 MB runs
        ratios = ["—" if other_image else _fmt(med / b if med and b else None, "x")
                  for b in base.values()]
        rss = r.peak_rss()
        rows.append(f"| {r.name} | {_fmt(med)} | {_fmt(min(times) if times else None)} | "
                    f"{_fmt(max(times) if times else None)} | "
                    f"{'n/a' if rss is None else f'{rss:.0f}'} | {_fmt(r.median_cpu())} | "
                    f"{' | '.join(ratios)} | "
                    f"{len(times)}/{len(r.samples)} |")
    return "\n".join(rows)


def targets(by_name: dict[str, ToolResult]) -> list[str]:
    """The brief's four targets: measured on medians (met/MISSED), minimums alongside."""
    def pick(name: str, best: bool) -> float | None:
        times = by_name[name].ok_seconds() if name in by_name else []
        if not times:
            return None
        return min(times) if best else statistics.median(times)

    def ratio(slow: str, fast: str, best: bool = False) -> float | None:
        s, f = pick(slow, best), pick(fast, best)
        return s / f if s and f else None

    gzip, none = "freight (gzip, default)", "freight --compression none"
    warm = "freight re-push (warm cache)"
    checks = [
        ("default push >= 2x faster than skopeo", ratio("skopeo copy", gzip),
         ratio("skopeo copy", gzip, True), 2.0, "x"),
        ("--compression none >= 3x faster than dockertarpush", ratio("dockertarpush", none),
         ratio("dockertarpush", none, True), 3.0, "x"),
        ("re-push of unchanged image < 0.3 s (issue 10)", pick(warm, False), pick(warm, True),
         0.3, "s"),
        ("peak RSS < 200 MB pushing the 800 MB image", _max_rss(by_name), None, 200.0, "MB"),
    ]
    lines = []
    for label, value, best, limit, unit in checks:
        if value is None:
            lines.append(f"- {label}: not measured")
            continue
        met = value >= limit if unit == "x" else value < limit
        also = f" (on minimums: {best:.2f} {unit})" if best is not None else ""
        lines.append(f"- {label}: {value:.2f} {unit}{also} -> {'met' if met else 'MISSED'}")
    return lines


def _max_rss(by_name: dict[str, ToolResult]) -> float | None:
    values = [by_name[n].peak_rss() for n in by_name if n.startswith("freight 800 MB")]
    present = [v for v in values if v is not None]
    return max(present) if present else None


def compare_table(results: list[ToolResult], base_of: dict[str, str], ratio_label: str,
                  server: bool = False) -> str:
    """Markdown: one row per result; the ratio is its median over the median of the result
    named by `base_of[name]` (>1 means the base, freight, is faster). `server` adds the
    server process's peak RSS and median CPU columns (serve/pull benchmarks)."""
    by_name = {r.name: r for r in results}
    head = "| tool | median s | min s | max s | client peak RSS MB | client CPU s |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if server:
        head += " server peak RSS MB | server CPU s |"
        rule += "---:|---:|"
    rows = [head + f" {ratio_label} | ok runs |", rule + "---:|---:|"]
    for r in results:
        times, med = r.ok_seconds(), r.median()
        base = by_name.get(base_of.get(r.name, ""))
        base_med = base.median() if base else None
        ratio = _fmt(med / base_med if med and base_med else None, "x") if base else "—"
        rss = r.peak_rss()
        row = (f"| {r.name} | {_fmt(med)} | {_fmt(min(times) if times else None)} | "
               f"{_fmt(max(times) if times else None)} | "
               f"{'n/a' if rss is None else f'{rss:.0f}'} | {_fmt(r.median_cpu())} |")
        if server:
            srss = r.peak_server_rss()
            row += (f" {'n/a' if srss is None else f'{srss:.0f}'} | "
                    f"{_fmt(r.median_server_cpu())} |")
        rows.append(row + f" {ratio} | {len(times)}/{len(r.samples)} |")
    return "\n".join(rows)
