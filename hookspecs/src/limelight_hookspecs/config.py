# mypy: disable-error-code="empty-body"
"""Configuration hooks: declare the environment variables a plugin reads.

A specification's body is its documentation only: pluggy never runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._env import EnvVar
from ._markers import hookspec


@hookspec
def limelight_config_declare() -> Sequence[EnvVar[Any]]:
    """Declare the environment variables a plugin reads.

    Called by ``limelight config``, which lists each variable with its
    effective value and its source, and by the generator of the configuration
    reference; not on a telemetry start (a plugin reads its variables with
    ``config.get(VAR)`` when it needs them). A variable several plugins read
    is one shared :class:`~limelight_hookspecs.EnvVar` object, listed once.

    :return: the plugin's :class:`~limelight_hookspecs.EnvVar` constants.
    """
