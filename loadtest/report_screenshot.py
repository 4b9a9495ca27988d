"""A picture of a load test's report.html for the README: its top (throughput and latency), as Chromium shows it.

    python -m loadtest.report_screenshot loadtest-report/report.html docs/loadtest_report.png

Debian's Chromium driven by Playwright (as tests/api/test_browser.py does; Playwright downloads no browser).
"""

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1200, "height": 900}


def screenshot(page_path: Path, png: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(page_path.resolve().as_uri())
            page.screenshot(path=str(png), full_page=False)
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report_html", type=Path)
    parser.add_argument("png", type=Path)
    args = parser.parse_args()
    screenshot(args.report_html, args.png)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
