"""The transfer engine: any source location to any destination (see run.py), in three parts
a newcomer can read one at a time: the planner (plan.py, no I/O), the converter
(converter.py, one thread, planned order) and the blob mover (mover.py), driven by
core.py over worker threads (workers.py) that a cancel token stops.

The names below load on first use, so that sinks can import `freight.engine.streaming`
without pulling in the engine (which imports the sinks).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from freight.engine.run import DEFAULT_JOBS, TransferOptions, streams_by_default, transfer

__all__ = ["DEFAULT_JOBS", "TransferOptions", "streams_by_default", "transfer"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'freight.engine' has no attribute {name!r}")
    from freight.engine import run

    return getattr(run, name)
