"""The only client code that touches the network: one HTTP client per registry, with auth."""

import sys

# httpx imports its command-line tool at import time when rich, pygments and click are
# installed (they are, for freight): ~70 ms of every start-up for code freight never runs.
# A None entry makes that optional import fail, which httpx handles by leaving `httpx.main`
# a stub; a program that imported httpx before freight is not affected.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
