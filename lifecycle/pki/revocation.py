"""Revocation checking modes, named apart from the validator so the CLI loads without it."""

from typing import Literal

RevocationMode = Literal["soft-fail", "hard-fail", "require"]
REVOCATION_MODES: tuple[RevocationMode, ...] = ("soft-fail", "hard-fail", "require")
