"""A `freight sync` interrupted while a blob copy hangs returns at once: its copies run on
daemon threads (workers.all_of), which the interpreter does not wait for at exit, where a
ThreadPoolExecutor's would keep the process alive until the hung request timed out."""

from __future__ import annotations

from support.procs import assert_script_exits


def test_an_interrupt_during_a_hung_blob_copy_ends_the_process() -> None:
    assert_script_exits("""
        import os, signal, threading
        from freight.digest import Digest
        from freight.manifest import Descriptor
        from freight.sync import treecopy

        class Hung:
            place = "registry.test"
            def has_blob(self, digest):
                return False
            def put_blob(self, digest, size, source):
                threading.Event().wait()  # a request that never answers

        blobs = [Descriptor("application/octet-stream", Digest.parse("sha256:" + c * 64), 1)
                 for c in "ab"]
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C
        try:
            treecopy._copy_blobs(object(), Hung(), blobs, treecopy.Tally())
        except KeyboardInterrupt:
            print("returned")
    """)
