"""Copy the journey's current screenshots here, compressed for the README.

    .venv/bin/python -m pytest tests/browser/test_journey.py   # writes var/screenshots/
    .venv/bin/python docs/screenshots/refresh.py

The journey test (tests/browser/test_journey.py) saves a PNG of each main page at 1280×800 and a
few at tablet width (768). Here they are reduced to a 256-colour palette, which keeps each one
well under 200 KB so the repository stays small, and then optimised losslessly by Pillow.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
SOURCE = Path(os.environ.get("CURIO_SCREENSHOT_DIR", HERE.parents[1] / "var" / "screenshots"))
# The journey's own pages: numbered steps and the tablet-width views (other browser tests write
# screenshots to the same folder; those are not part of the README).
PATTERNS = ("[0-9][0-9]-*.png", "tablet-*.png")
LIMIT = 200_000


def main() -> int:
    shots = sorted({p for pattern in PATTERNS for p in SOURCE.glob(pattern)})
    if not shots:
        print(f"No journey screenshots in {SOURCE}: run `.venv/bin/python -m pytest tests/browser/test_journey.py` first.")
        return 1
    for stale in HERE.glob("*.png"):
        stale.unlink()
    too_big = []
    for path in shots:
        with Image.open(path) as im:
            small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        out = HERE / path.name
        small.save(out, optimize=True)
        size = out.stat().st_size
        print(f"{out.relative_to(HERE.parents[1])}: {size / 1000:.0f} KB")
        if size > LIMIT:
            too_big.append(out.name)
    if too_big:
        print(f"Over {LIMIT // 1000} KB: {', '.join(too_big)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
