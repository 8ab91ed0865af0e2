"""Size of `cnncalc report`'s page and how long it takes to become interactive in headless Chromium.

    python benchmarks/bench_page.py [--repeat 5] [--shots DIR] [NAME ...]

For each built-in (the largest ones by default): writes the page, opens it from a file in
Debian's chromium through playwright (a fresh tab each time), and reads the page's own mark,
`body[data-ready-ms]`: milliseconds from navigation start until the graph, totals, charts and
table are drawn and listening. Prints the size and the median; `--shots DIR` also saves light and
dark screenshots. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

import cnncalc
from cnncalc.analysis import analyze
from cnncalc.render.page import page_data, page_html

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LARGEST = ["efficientnet_b7", "densenet201", "resnet152"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=LARGEST)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--shots", type=Path, default=None, help="save light and dark screenshots here")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    options = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with TemporaryDirectory() as folder, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=options.chromium, args=ARGS)
        for name in options.names:
            graph = cnncalc.load(name)
            path = Path(folder) / f"{name}.html"
            path.write_text(page_html(page_data(graph, analyze(graph, explain=True, fields=True))), encoding="utf-8")
            times = []
            for _ in range(options.repeat):
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(path.as_uri())
                page.wait_for_selector("body[data-ready=true]", timeout=60_000)
                times.append(int(page.get_attribute("body", "data-ready-ms") or 0))
                page.close()
            size = path.stat().st_size
            print(
                f"{name:18} {size / 2**20:5.2f} MiB  interactive in {statistics.median(times):5.0f} ms "
                f"(median of {len(times)}; {min(times)}..{max(times)})"
            )
            if options.shots:
                options.shots.mkdir(parents=True, exist_ok=True)
                for scheme in ("light", "dark"):
                    page = browser.new_page(color_scheme=scheme, viewport={"width": 1400, "height": 900})
                    page.goto(path.as_uri())
                    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
                    page.screenshot(path=str(options.shots / f"{name}_{scheme}.png"))
                    page.close()
        browser.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
