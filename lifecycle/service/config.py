"""Moved to :mod:`lifecycle.config` (one configuration model for every layer); kept for importers
that have not moved yet."""

from lifecycle.config import (
    DEFAULT_WORK_SOURCE,
    ENV_CONFIG,
    Config,
    ServeSettings,
    TlogSettings,
    load_config,
    parse_duration,
    parse_listen,
)

__all__ = ["DEFAULT_WORK_SOURCE", "ENV_CONFIG", "Config", "ServeSettings", "TlogSettings",
           "load_config", "parse_duration", "parse_listen"]
