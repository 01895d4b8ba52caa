"""Label Studio's brush RLE: the bit stream its ``brushlabels`` regions carry.

The stream encodes the mask as an RGBA image flattened to H·W·4 bytes: 32 bits of
length, 5 bits of word size − 1, four 4-bit run-length field sizes − 1, then blocks.
A block starts with 1 bit: 1 is a run (2 bits choose the length field, the length − 1,
one word repeated), 0 is literal (the same length header, then that many words).
Label Studio reads the alpha channel; Studio writes 255 on every channel of the mask.
"""

from __future__ import annotations

import numpy as np

SIZES = (3, 4, 8, 16)
WORD = 8


class BrushError(ValueError):
    pass


def encode(mask: np.ndarray) -> list[int]:
    """Encode a boolean [H, W] mask as Label Studio brush RLE bytes."""
    flat = np.repeat(mask.ravel().astype(np.uint8) * 255, 4)
    n = len(flat)
    bits = [f"{n:032b}", f"{WORD - 1:05b}", "".join(f"{s - 1:04b}" for s in SIZES)]
    change = np.flatnonzero(np.diff(flat)) + 1
    starts = np.concatenate(([0], change)).tolist()
    ends = np.concatenate((change, [n])).tolist()
    for start, end in zip(starts, ends, strict=True):
        value, length = int(flat[start]), end - start
        while length:
            run = min(length, 1 << SIZES[-1])
            field = next(k for k, size in enumerate(SIZES) if run - 1 < 1 << size)
            bits.append(f"1{field:02b}{run - 1:0{SIZES[field]}b}{value:0{WORD}b}")
            length -= run
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return list(int(stream, 2).to_bytes(len(stream) // 8, "big"))


def decode(rle, width: int, height: int) -> np.ndarray:
    """Decode brush RLE bytes to a boolean [H, W] mask (its alpha channel); raise BrushError."""
    try:
        data = np.asarray(rle, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise BrushError("the brush RLE is not a list of byte values")
    if data.ndim != 1 or ((data < 0) | (data > 255)).any():
        raise BrushError("the brush RLE is not a list of byte values")
    bits = np.unpackbits(data.astype(np.uint8)).tobytes().translate(bytes.maketrans(b"\0\1", b"01"))
    stream = bits.decode("ascii")
    pos = 0

    def read(size: int) -> int:
        nonlocal pos
        if pos + size > len(stream):
            raise BrushError("the brush RLE ends early")
        value = int(stream[pos : pos + size], 2)
        pos += size
        return value

    num = read(32)
    if num != width * height * 4:
        raise BrushError(
            f"the brush RLE holds {num:,} values; a {width}×{height} RGBA image has {width * height * 4:,}"
        )
    word = read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    out = np.zeros(num, np.uint8)
    i = 0
    while i < num:
        is_run = read(1)
        j = i + 1 + read(sizes[read(2)])
        if j > num:
            raise BrushError("the brush RLE runs past the image")
        if is_run:
            out[i:j] = read(word)
        else:
            out[i:j] = [read(word) for _ in range(j - i)]
        i = j
    return out.reshape(height, width, 4)[:, :, 3] > 127
