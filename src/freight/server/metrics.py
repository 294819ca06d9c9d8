"""Prometheus metrics of the registry (`GET /metrics`, text exposition format).

prometheus_client does the bookkeeping; a labelled child is looked up once per label set
and cached here, so a request costs a few microseconds (three counter increments and one
histogram observation), not a label lookup per metric.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Seconds: manifest and HEAD requests take well under 10 ms; blob transfers take seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0, 300.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST

_Children = tuple[Counter, Histogram, Counter, Counter]
# Methods get a label of their own; any other (clients may send any token) is "other", so a
# hostile client cannot grow the label set.
METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """The registry's metrics, in a registry of their own (no process-global state)."""

    def __init__(self, upload_sessions: Callable[[], float] | None = None) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "freight_http_requests", "HTTP requests answered, by route kind, method, status",
            ["route", "method", "status"], registry=self.registry)
        self._latency = Histogram(
            "freight_http_request_duration_seconds", "Time from request to last byte sent",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._received = Counter("freight_http_received_bytes",
                                 "Request body bytes received", ["route"],
                                 registry=self.registry)
        self._sent = Counter("freight_http_sent_bytes", "Response body bytes sent", ["route"],
                             registry=self.registry)
        self._errors = Counter(
            "freight_storage_errors",
            "Unexpected errors of handlers (storage failures), by exception class",
            ["error"], registry=self.registry)
        self._sessions = Gauge("freight_upload_sessions",
                               "Upload sessions in progress in this process",
                               registry=self.registry)
        if upload_sessions is not None:
            self._sessions.set_function(upload_sessions)
        self._children: dict[tuple[str, str, int], _Children] = {}

    def observe(self, route: str, method: str, status: int, seconds: float,
                received: int, sent: int) -> None:
        """Count one answered request."""
        method = method if method in METHODS else "other"
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._requests.labels(route, method, str(status)),
                self._latency.labels(route, method),
                self._received.labels(route), self._sent.labels(route))
        requests, latency, received_bytes, sent_bytes = children
        requests.inc()
        latency.observe(seconds)
        if received:
            received_bytes.inc(received)
        if sent > 0:
            sent_bytes.inc(sent)

    def storage_error(self, exc: BaseException) -> None:
        self._errors.labels(type(exc).__name__).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return bytes(generate_latest(self.registry))
