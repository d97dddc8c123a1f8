"""The one error tree of fareway. The server maps each leaf to a gRPC status in one place
(`fareway.server.status`); nothing else chooses status codes.

    FarewayError
    ├── InvalidRequest          INVALID_ARGUMENT   (carries field violations)
    ├── Unauthenticated         UNAUTHENTICATED
    ├── PermissionDenied        PERMISSION_DENIED
    ├── BudgetExceeded          RESOURCE_EXHAUSTED (carries the limit and when it resets)
    ├── RateLimitExceeded       RESOURCE_EXHAUSTED (carries when the minute ends)
    ├── NoModelFits             RESOURCE_EXHAUSTED (no allowed model fits the cost ceiling)
    ├── ServerBusy              RESOURCE_EXHAUSTED (the process is at server.max_streams
    │                                               streams; carries when to retry)
    ├── ProviderError           an attempt failed; the next candidate may take over
    │   ├── RateLimited         (carries Retry-After)
    │   ├── Overloaded
    │   ├── ProviderTimeout
    │   ├── ProviderUnreachable
    │   ├── MalformedResponse   the response was not the API's wire format
    │   └── ProviderRejected    the provider refused the request itself (4xx other than 429)
    ├── AllCandidatesFailed     UNAVAILABLE        (every candidate failed before its first token)
    ├── StreamBroken            ABORTED            (a provider failed after tokens were streamed)
    └── LedgerUnavailable       UNAVAILABLE        (the budget ledger cannot be reached)

    StartupError                not a gRPC error: fareway cannot start (`fareway serve` prints
                                its one-line message and exits non-zero)
    └── EmbedderUnavailable     a local embedder's package or model file is missing
                                (`routing.embedders`)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class FarewayError(Exception):
    """Base of every error fareway raises on purpose."""


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its dotted path and what is wrong with it."""

    field: str
    description: str


class InvalidRequest(FarewayError):
    """The request itself is malformed; the caller must change it."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in violations))

    @classmethod
    def single(cls, field: str, description: str) -> InvalidRequest:
        """An error about one field."""
        return cls([FieldViolation(field, description)])


class Unauthenticated(FarewayError):
    """No API key, or one the server does not know."""


class PermissionDenied(FarewayError):
    """The caller is known but may not do this."""


class BudgetExceeded(FarewayError):
    """A tenant's hard cap would be passed by this request."""

    def __init__(self, message: str, *, tenant: str, window: str, resets_at: datetime | None):
        self.tenant = tenant
        self.window = window
        self.resets_at = resets_at
        super().__init__(message)


class RateLimitExceeded(FarewayError):
    """A tenant has used its requests or tokens for this minute."""

    def __init__(self, message: str, *, tenant: str, limit: str, retry_after_s: float) -> None:
        self.tenant = tenant
        self.limit = limit  # "requests_per_minute" or "tokens_per_minute"
        self.retry_after_s = retry_after_s
        super().__init__(message)


class NoModelFits(FarewayError):
    """No allowed model fits the request's cost ceiling."""


class ServerBusy(FarewayError):
    """This server process is already serving its bound of concurrent streams
    (`server.max_streams`, see `fareway.server.admission`); the call was refused before any
    work, and a slot is likely free after `retry_after_s`."""

    def __init__(self, message: str, *, limit: int, retry_after_s: float) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        super().__init__(message)


class ProviderError(FarewayError):
    """A model attempt failed. `model` is the catalog id of the model that was tried."""

    kind = "provider_error"

    def __init__(self, message: str, *, model: str = "", retry_after_s: float | None = None):
        self.model = model
        self.retry_after_s = retry_after_s
        super().__init__(message)

    def describe(self) -> str:
        """`kind: message`, the form used in fallback events and error details."""
        return f"{self.kind}: {self}"


class RateLimited(ProviderError):
    """HTTP 429 or the provider's equivalent."""

    kind = "rate_limited"


class Overloaded(ProviderError):
    """The provider is overloaded or failing (5xx, 529)."""

    kind = "overloaded"


class ProviderTimeout(ProviderError):
    """The provider did not answer in time."""

    kind = "timeout"


class ProviderUnreachable(ProviderError):
    """The connection to the provider failed."""

    kind = "connection_error"


class MalformedResponse(ProviderError):
    """The provider's response was not its API's wire format (a chunk that is not JSON, or
    JSON of the wrong shape): a failure of the upstream like any other."""

    kind = "malformed_response"


class ProviderRejected(ProviderError):
    """The provider refused the request (a 4xx other than 429: bad key, unknown model, ...)."""

    kind = "rejected"


class AllCandidatesFailed(FarewayError):
    """Every candidate failed before its first token; `last` is the final provider error."""

    def __init__(self, last: ProviderError, attempts: int) -> None:
        self.last = last
        self.attempts = attempts
        super().__init__(f"all {attempts} candidate model(s) failed; last: {last.describe()}")


class StreamBroken(FarewayError):
    """The provider failed after tokens were already streamed to the caller."""

    def __init__(self, cause: ProviderError) -> None:
        self.cause = cause
        super().__init__(f"model {cause.model} failed mid-answer: {cause.describe()}")


class LedgerUnavailable(FarewayError):
    """The budget ledger cannot be reached, so nothing that needs it may run.

    `str(error)` is what callers see and names no address or internal class; `detail` is for
    the server's log and start-up errors (it may name the store's address)."""

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__("the budget ledger is unavailable; retry shortly")


class StartupError(Exception):
    """fareway cannot start. The message is one line naming the file, field, path, variable or
    address at fault; `fareway serve` prints it without a traceback and exits non-zero."""
