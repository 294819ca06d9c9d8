"""Where images go. A sink stores blobs and manifests; the engine (copy.py) drives it."""
