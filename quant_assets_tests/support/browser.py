"""Debian's Chromium for Playwright (``playwright install`` cannot download here), headless and offline."""

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def fill_play(page, **fields: str) -> None:
    """Type into the My plays form: ``fill_play(page, symbol="AAPL", shares="10", price="120", date="2022-10-03")``."""
    for name, value in fields.items():
        page.get_by_test_id(f"play-{name}").fill(value)
