"""Moved to :mod:`lifecycle.config` (the policies are part of the one configuration model); kept
for importers that have not moved yet."""

from lifecycle.config import (
    DEFAULT_RENEWAL,
    EPHEMERAL_ALGORITHMS,
    ImageSetPolicy,
    Policies,
    Strategy,
)

REISSUE, RESIGN, EPHEMERAL = Strategy.REISSUE, Strategy.RESIGN, Strategy.EPHEMERAL
STRATEGIES = tuple(Strategy)

__all__ = ["DEFAULT_RENEWAL", "EPHEMERAL", "EPHEMERAL_ALGORITHMS", "REISSUE", "RESIGN",
           "STRATEGIES", "ImageSetPolicy", "Policies", "Strategy"]
