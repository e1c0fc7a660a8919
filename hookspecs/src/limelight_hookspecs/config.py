"""Configuration hooks: declare the environment variables a plugin reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._env import EnvVar
from ._markers import hookspec


@hookspec
def limelight_config_declare() -> Sequence[EnvVar[Any]]:
    """Declare the environment variables a plugin reads.

    They appear in ``limelight config`` (with their effective value and its
    source) and in the generated configuration reference.

    :return: the plugin's :class:`~limelight_hookspecs.EnvVar` constants.
    """
    return ()
