"""Generate the configuration reference and the metric catalog from the code.

Both pages are written before Sphinx reads the sources, from what the installed
distributions declare: the core's ``EnvVar`` constants and every plugin's
``limelight_config_declare``, and every plugin's ``limelight_metrics_declare``.
The same text is what ``limelight config --variables`` and ``limelight catalog``
print, so the docs cannot drift from the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

from limelight._catalog import config_reference_markdown, metric_catalog_markdown


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _generate(app: Sphinx) -> None:
    out = Path(app.srcdir) / "reference"
    _write(out / "configuration.md", config_reference_markdown())
    _write(out / "metrics.md", metric_catalog_markdown())


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", _generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
