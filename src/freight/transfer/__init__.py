"""The transfer engine: any source location to any destination (see run.py), in three parts
a newcomer can read one at a time: the planner (plan.py, no I/O), the converter
(converter.py, one thread, planned order) and the blob mover (mover.py), driven by
engine.py over worker threads (workers.py) that a cancel token stops."""

from freight.transfer.run import DEFAULT_JOBS, TransferOptions, streams_by_default, transfer

__all__ = ["DEFAULT_JOBS", "TransferOptions", "streams_by_default", "transfer"]
