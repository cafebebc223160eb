"""Errors a user can act on.

Every error raised to the command line is a :class:`LifecycleError`: one line that names the file
(and object or field) at fault and says what to do. Anything else reaching the CLI is a bug.
Their exit status is :attr:`LifecycleError.exit_code`: 1 for a check that ran and failed
(:class:`VerificationError`, :class:`LogProofError`), 2 for every other one;
``lifecycle.cli.failure.exit_code`` adds the statuses of everything else that can end a command.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the public result type lives above this layer; only named here
    from pathlib import Path

    from lifecycle.verify import VerificationResult


class ExitCode(IntEnum):
    """The exit status of every command; the CLI reference explains each one."""

    OK = 0
    CHECK_FAILED = 1
    BAD_INPUT = 2
    BUG = 70
    INTERRUPTED = 130


class LifecycleError(Exception):
    """Base of all expected failures; ``str()`` is the one-line message shown to the user."""

    def __init__(self, message: str, *, path: str | Path | None = None, hint: str = "") -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        return f"{text} ({self.hint})" if self.hint else text

    @property
    def exit_code(self) -> ExitCode:
        """The one rule: a check that ran and failed is 1, anything to fix before running again is 2."""
        failed = isinstance(self, VerificationError | LogProofError)
        return ExitCode.CHECK_FAILED if failed else ExitCode.BAD_INPUT


class SifError(LifecycleError):
    """A SIF image cannot be read or changed."""


class SifFormatError(SifError):
    """The file is not a well-formed SIF image; ``field`` names the header/descriptor field at fault."""

    def __init__(
        self, message: str, *, path: str | Path | None = None, field: str = "", hint: str = ""
    ) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message, path=path, hint=hint)


class SifCapacityError(SifError):
    """No free descriptor slot is left for a new object."""


class ObjectNotFoundError(SifError):
    """An object or group ID given by the user does not exist in the image."""


class KeyMaterialError(LifecycleError):
    """A key or certificate file cannot be used (unreadable, wrong passphrase, wrong kind)."""


class SignatureFormatError(LifecycleError):
    """A signature object is not a signature this tool (or the reference) can parse."""


class SigningError(LifecycleError):
    """Signing was refused because it would leave the image in a worse state."""


class VerificationError(LifecycleError):
    """Verification ran and the image did not satisfy the policy.

    ``result`` is the full verdict (per-signature results) when the image itself was judged,
    so a caller can show why; None when verification stopped earlier (e.g. a certificate path).
    """

    def __init__(self, message: str, *, path: str | Path | None = None, hint: str = "",
                 result: VerificationResult | None = None) -> None:
        self.result = result
        super().__init__(message, path=path, hint=hint)

    @property
    def reason(self) -> str:
        """Why the image is not trusted, without the file name (for callers that record it)."""
        return self.result.failure_summary() if self.result is not None else self.message


class LogError(LifecycleError):
    """The transparency log refused an operation or its evidence cannot be read."""


class LogProofError(LogError):
    """An inclusion or consistency proof, checkpoint or note did not verify."""


class LogForkError(LogProofError):
    """Two checkpoints signed by the log key cannot both be true: the log rewrote its history."""


class LogConflictError(LogError):
    """Another writer appended to the log first; reload the tree and try again."""


class CertificateError(KeyMaterialError):
    """A certificate cannot be used for what was asked (corrupt, not for code signing, unknown)."""


class CertificateValidationError(VerificationError):
    """A certificate path did not validate at the requested time (expired, revoked, no trust)."""


class KeyStateError(LifecycleError):
    """A key lifecycle transition that the state machine does not allow."""


class KeyNotFoundError(LifecycleError):
    """A key or certificate id given by the user is not in the store."""


class StoreError(LifecycleError):
    """The database cannot be opened, migrated or written."""


class ConfigError(LifecycleError):
    """The configuration file is missing, unreadable or has a bad value."""


class BundleError(LifecycleError):
    """A verification bundle cannot be written or read (bad path, unreadable archive, bad layout)."""


class BundleVerificationError(VerificationError):
    """A bundle is not genuine, not complete, expired, rolled back, or forks the log."""


class PolicyError(ConfigError):
    """An ``[[image_sets]]`` policy in the configuration is invalid."""


class TamperedImageError(VerificationError):
    """An image's current signatures no longer match its content; it is never re-signed."""


class ActionError(LifecycleError):
    """A planned action cannot be applied as planned (its subject changed or vanished)."""


class LeaseLostError(StoreError):
    """A work item's lease expired and another worker took it over: this worker's result is void."""


class ServiceError(LifecycleError):
    """The service cannot start: bad [serve] settings, an outdated schema or a broken work source."""


class ReportError(LifecycleError):
    """A report cannot be rendered or written (unknown format, unwritable output)."""


class TimestampError(LifecycleError):
    """An RFC 3161 timestamp could not be obtained, or a token proves nothing (and why)."""


class KeyserverError(LifecycleError):
    """A keyserver did not answer, refused a key, or served something that is not the key asked for."""


class KeyNotOnKeyserverError(KeyserverError):
    """No configured keyserver has a key with the fingerprint asked for."""


class KeyserverUnavailableError(KeyserverError):
    """A keyserver did not answer (after its retries): down, unreachable or too slow."""
