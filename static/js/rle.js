/* COCO run-length encoding in the browser: the string form pycocotools writes, and the
 * uncompressed counts Studio's API accepts. Masks here are row-major Uint8Array (1 = on);
 * COCO counts run down columns (Fortran order), starting with a run of zeros. */
(function (root) {
  "use strict";

  /* The compressed counts string → run lengths (pycocotools' rleFrString). Each count is
   * written 5 bits a character, offset by 48, with 0x20 meaning "more follows" and 0x10 the
   * sign on the last character; from the third count on, the value is a delta to the count
   * two places back. */
  function countsFromString(text) {
    const counts = [];
    let p = 0;
    while (p < text.length) {
      let x = 0, k = 0, more = 1;
      while (more) {
        const c = text.charCodeAt(p) - 48;
        x |= (c & 0x1f) << (5 * k);
        more = c & 0x20;
        p += 1;
        k += 1;
        if (!more && (c & 0x10)) x |= -1 << (5 * k);
      }
      if (counts.length > 2) x += counts[counts.length - 2];
      counts.push(x);
    }
    return counts;
  }

  /* RLE {size: [h, w], counts: string | number[]} → row-major Uint8Array of h × w. */
  function decode(rle) {
    const h = rle.size[0], w = rle.size[1];
    const counts = typeof rle.counts === "string" ? countsFromString(rle.counts) : rle.counts;
    const bits = new Uint8Array(w * h);
    let pos = 0;
    for (let i = 0; i < counts.length; i++) {
      const n = counts[i];
      if (i % 2 === 1) {
        for (let j = pos; j < pos + n; j++) {
          const x = (j / h) | 0;
          bits[(j - x * h) * w + x] = 1;
        }
      }
      pos += n;
    }
    if (pos !== w * h) throw new Error("RLE counts sum to " + pos + ", not " + w * h);
    return bits;
  }

  /* Row-major Uint8Array (non-zero = on) → uncompressed COCO counts, column by column. */
  function encode(bits, w, h) {
    const counts = [];
    let current = 0, run = 0;
    for (let x = 0; x < w; x++) {
      for (let y = 0; y < h; y++) {
        const v = bits[y * w + x] ? 1 : 0;
        if (v !== current) {
          counts.push(run);
          run = 0;
          current = v;
        }
        run += 1;
      }
    }
    counts.push(run);
    return counts;
  }

  /* Bounding box [x, y, w, h] of the on pixels, or null when none is on. */
  function extent(bits, w, h) {
    let x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (let y = 0; y < h; y++) {
      const row = y * w;
      for (let x = 0; x < w; x++) {
        if (bits[row + x]) {
          if (x < x0) x0 = x;
          if (x > x1) x1 = x;
          if (y < y0) y0 = y;
          if (y > y1) y1 = y;
        }
      }
    }
    return x1 < 0 ? null : [x0, y0, x1 - x0 + 1, y1 - y0 + 1];
  }

  const api = { countsFromString, decode, encode, extent };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.StudioRLE = api;
})(this);
