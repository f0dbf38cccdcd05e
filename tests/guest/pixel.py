#!/usr/bin/env python3
"""Count the pure red, green and blue pixels of a screenshot (8-bit PNG,
RGB or RGBA, not interlaced; or binary PPM), as `red=N green=N blue=N`.
Used with tests/guest/dmabuf-probe, which shows red/blue/green buffers."""
import struct
import sys
import zlib


def png_rows(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype in (2, 6) and not interlace, "unsupported PNG"
    bpp = 3 if ctype == 2 else 4
    raw, stride, prev, out = zlib.decompress(idat), w * bpp, bytearray(w * bpp), []
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append((bytes(line), bpp))
        prev = line
    return out


def ppm_rows(data):
    parts, pos = [], 0
    while len(parts) < 4:
        while data[pos:pos + 1].isspace(): pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace(): end += 1
        parts.append(data[pos:end]); pos = end
    assert parts[0] == b"P6" and parts[3] == b"255", "unsupported PPM"
    w, h = int(parts[1]), int(parts[2])
    pix = data[pos + 1:]
    return [(pix[y * w * 3:(y + 1) * w * 3], 3) for y in range(h)]


data = open(sys.argv[1], "rb").read()
rows = png_rows(data) if data[:4] == b"\x89PNG" else ppm_rows(data)
counts = {"red": 0, "green": 0, "blue": 0}
names = {(255, 0, 0): "red", (0, 255, 0): "green", (0, 0, 255): "blue"}
for line, bpp in rows:
    for i in range(0, len(line), bpp):
        n = names.get(tuple(line[i:i + 3]))
        if n: counts[n] += 1
print(" ".join(f"{k}={v}" for k, v in counts.items()))
