"""The registry HTTP API v2 without I/O: routes, URLs, headers and error bodies.

Shared by the client (transport/, sinks/, sources/) and the embedded registry (server/).
"""
