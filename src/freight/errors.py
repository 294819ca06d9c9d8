"""One exception tree for freight.

Every error carries a message written for people (what went wrong and what to do next) and
an exit code for the CLI. Registry errors also carry the registry's own code, status and
detail, and whether retrying could help.
"""

from __future__ import annotations

from typing import Any

# Exit codes: 2 is click's usage error; the rest are ours and stable.
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_REGISTRY = 4
EXIT_NETWORK = 5
EXIT_AUTH = 6
EXIT_NOT_FOUND = 7
EXIT_INTERRUPTED = 130


class FreightError(Exception):
    """Base of every error freight raises on purpose."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(FreightError):
    """The caller asked for something that does not make sense (bad reference, options)."""

    exit_code = EXIT_USAGE


class SourceError(FreightError):
    """The input (archive, layout) is missing, unreadable, malformed or inconsistent."""

    exit_code = EXIT_BAD_INPUT


class DigestMismatch(SourceError):
    """Bytes did not hash to the digest that described them."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{what}: the content does not match (its digest is {actual}, "
                         f"expected {expected}); the input is damaged or was modified")
        self.expected = expected
        self.actual = actual


class NetworkError(FreightError):
    """The registry could not be reached, or the connection failed mid-way."""

    exit_code = EXIT_NETWORK
    retryable = True


class RegistryError(FreightError):
    """The registry answered with an error (or with something that is not the protocol)."""

    exit_code = EXIT_REGISTRY

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: Any = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail
        self.retryable = retryable


class AuthError(RegistryError):
    """The registry refused our credentials or asked for ones we do not have."""

    exit_code = EXIT_AUTH


class NotFound(RegistryError):
    """The repository, tag, manifest or blob does not exist on the registry."""

    exit_code = EXIT_NOT_FOUND


class NotARegistry(RegistryError):
    """The host answers HTTP, but not the registry API (a web server, another service)."""


def registry_sent_wrong_bytes(origin: str, exc: DigestMismatch) -> RegistryError:
    """Bytes a registry sent that do not match their digest are the registry's fault (or a
    proxy's on the way), not bad input."""
    return RegistryError(f"{origin} sent bytes that do not match their digest (expected "
                         f"{exc.expected}, got {exc.actual}): the registry's storage or a "
                         "proxy in between is corrupting data", code="DIGEST_INVALID")


class Interrupted(FreightError):
    """The user stopped the operation (Ctrl-C)."""

    exit_code = EXIT_INTERRUPTED
