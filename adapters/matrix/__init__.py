"""The Matrix channel (matrix-nio): `hotline serve`'s `matrix:` section.

`build_channel(section, env, base)` validates the section (`adapters.matrix.config`) and
returns a `MatrixChannel` (`adapters.matrix.channel`). See README.md in this folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.matrix.channel import MatrixChannel
from adapters.matrix.config import MatrixConfig, Secrets, load_config

__all__ = ["MatrixChannel", "MatrixConfig", "Secrets", "build_channel"]


def build_channel(section: Mapping[str, Any], env: Mapping[str, str], base: Path) -> MatrixChannel:
    """The channel for a `matrix:` config section; secrets come from `env` only."""
    config, secrets = load_config(section, env, base)
    return MatrixChannel(config, secrets)
