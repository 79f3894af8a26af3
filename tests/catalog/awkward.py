"""Builds folders of awkward image files (good ones that are hard to thumbnail, and bad ones
that must be refused) for the import tests of the command and the upload page."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# Relative path → what the thumbnail must look like (size after EXIF orientation).
GOOD: dict[str, tuple[int, int]] = {
    "colour/cmyk.jpg": (300, 200),
    "colour/deep16.png": (320, 240),
    "colour/palette.png": (64, 48),
    "colour/alpha.png": (100, 100),
    "frames/animated.gif": (40, 30),
    "frames/pages.tif": (50, 40),
    "orientation/rotated.jpg": (120, 300),  # stored 300×120 with EXIF orientation 6 (90° clockwise)
    "tiny/one.png": (1, 1),
    "tiny/long.png": (8000, 4),
    "names/café ünïcode 写真.png": (30, 20),
    "names/<script>alert('x') & co.png": (30, 20),
    "nested/a/b/c/deep.jpg": (40, 40),
    "top.png": (10, 10),
}
# Relative path → the reason the importer must give.
BAD: dict[str, str] = {
    "bad/empty.png": "empty file",
    "bad/notes.txt": "not an image",
    "bad/truncated.jpg": "truncated image",
    "bad/corrupt.png": "corrupt image",
    "bad/drawing.svg": "unsupported format",
    "bad/iphone.heic": "unsupported format",
    "bad/bomb.png": "too many pixels",
}
# The bomb is small on disk but declares this many pixels in its header; tests set
# CURIO_MAX_IMAGE_PIXELS below it (and above every good image).
BOMB_SIZE = (12_000, 12_000)
PIXEL_LIMIT_FOR_TESTS = 50_000_000


def _jpeg_bytes(im: Image.Image, **kwargs: object) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, **kwargs)
    return out.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring width×height 1-bit pixels, with a tiny compressed body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    body = zlib.compress(row * 16, 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def rotated_source() -> Image.Image:
    """300×120 as stored: left half red, right half blue. Orientation 6 shows it rotated 90°
    clockwise, so the displayed image is 120×300 with red on top and blue at the bottom."""
    im = Image.new("RGB", (300, 120), (220, 20, 20))
    im.paste((20, 20, 220), (150, 0, 300, 120))
    return im


def build_good(root: Path) -> None:
    for rel in GOOD:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
    gradient = np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (200, 1))
    Image.fromarray(np.dstack([gradient, 255 - gradient, gradient // 2])).convert("CMYK").save(
        root / "colour/cmyk.jpg", quality=90
    )
    # 16-bit greyscale that uses the top of the range: clipping to 8 bits would turn it all white.
    deep = np.tile(np.linspace(20_000, 65_535, 320), (240, 1)).astype(np.uint16)
    Image.fromarray(deep).save(root / "colour/deep16.png")
    Image.new("RGB", (64, 48), (0, 160, 0)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(
        root / "colour/palette.png"
    )
    alpha = Image.new("RGBA", (100, 100), (0, 0, 0, 0))  # fully transparent: must come out white
    alpha.paste((200, 0, 0, 255), (0, 0, 50, 100))
    alpha.save(root / "colour/alpha.png")
    frames = [Image.new("RGB", (40, 30), color) for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(root / "frames/animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    pages = [Image.new("RGB", (50, 40), (0, 0, 255)), Image.new("RGB", (70, 20), (255, 255, 0))]
    pages[0].save(root / "frames/pages.tif", save_all=True, append_images=pages[1:])
    exif = Image.Exif()
    exif[0x0112] = 6
    (root / "orientation/rotated.jpg").write_bytes(_jpeg_bytes(rotated_source(), exif=exif.tobytes()))
    Image.new("RGB", (1, 1), (9, 9, 9)).save(root / "tiny/one.png")
    Image.new("L", (8000, 4), 128).save(root / "tiny/long.png")
    for rel in ("names/café ünïcode 写真.png", "names/<script>alert('x') & co.png"):
        Image.new("RGB", (30, 20), (10, 120, 200)).save(root / rel)
    (root / "nested/a/b/c/deep.jpg").write_bytes(_jpeg_bytes(Image.new("RGB", (40, 40), (50, 60, 70))))
    Image.new("RGB", (10, 10), (1, 2, 3)).save(root / "top.png")


def build_bad(root: Path) -> None:
    (root / "bad").mkdir(parents=True, exist_ok=True)
    (root / "bad/empty.png").write_bytes(b"")
    (root / "bad/notes.txt").write_text("These are my holiday notes, not a picture.\n" * 20)
    photo = np.random.default_rng(7).integers(0, 255, (400, 600, 3), dtype=np.uint8)
    full = _jpeg_bytes(Image.fromarray(photo))
    (root / "bad/truncated.jpg").write_bytes(full[: len(full) // 2])
    good_png = io.BytesIO()
    Image.fromarray(photo).save(good_png, "PNG")
    png = bytearray(good_png.getvalue())
    # Scramble the middle of the compressed pixel data: header fine, pixels broken.
    for i in range(len(png) // 2, len(png) // 2 + 200):
        png[i] ^= 0x5A
    (root / "bad/corrupt.png").write_bytes(bytes(png))
    (root / "bad/drawing.svg").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        '<rect width="10" height="10" fill="red"/></svg>\n'
    )
    # The start of a real HEIC file: an ISO-BMFF 'ftyp' box with the 'heic' brand.
    ftyp = b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic"
    (root / "bad/iphone.heic").write_bytes(struct.pack(">I", len(ftyp) + 4) + ftyp + b"\x00" * 200)
    (root / "bad/bomb.png").write_bytes(_bomb_png(*BOMB_SIZE))


def build_awkward(root: Path, *, bad: bool = True) -> Path:
    build_good(root)
    if bad:
        build_bad(root)
    return root
