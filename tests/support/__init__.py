"""Real-component test infrastructure: registries, docker engines, containerd, archives, proxy.

Everything here starts real processes on loopback and cleans them up; nothing is mocked.
"""
