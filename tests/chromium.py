"""Debian's Chromium driven by Playwright, for the tests that look at a page (the control room, a report)."""

import shutil
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = (
    "install Debian's Chromium and Playwright for Python: apt-get install -y --no-install-recommends chromium;"
    " pip install playwright (no browser download: the test launches /usr/bin/chromium)"
)
DOCS = Path(__file__).resolve().parents[1] / "docs"


def chromium_missing() -> str | None:
    """Why no page can be shown here (None: Chromium is installed)."""
    if not CHROMIUM.is_file() or shutil.which(str(CHROMIUM)) is None:
        return f"no Chromium at {CHROMIUM}: {INSTALL_HINT}"
    return None
