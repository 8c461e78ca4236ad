#!/usr/bin/env python3
"""Copy captured frames into the protocol crate's golden directory.

    promote.py CAPTURE_DIR [GOLDEN_DIR]

Keeps, per (client, api, version), the first frame (<...>-1.bin) and, for
Produce, the second one too (the scenarios send a plain batch, then a gzip
one). Produce/Fetch frames over 16 KiB are dropped. Each client's golden
folder is replaced wholesale, so a re-capture leaves no stale files.
"""
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_GOLDEN = os.path.join(HERE, "..", "..", "crates", "gregor-protocol", "tests", "golden")
NAME = re.compile(r"^(?P<client>.+)-(?P<api>[A-Za-z]+\d*|key\d+)-v(?P<ver>\d+)-(?P<n>\d+)\.bin$")
MAX_DATA_FRAME = 16 * 1024


def main():
    src = sys.argv[1]
    golden = os.path.normpath(sys.argv[2] if len(sys.argv) > 2 else DEFAULT_GOLDEN)
    picked = {}
    for f in sorted(os.listdir(src)):
        m = NAME.match(f)
        if not m:
            continue
        n = int(m["n"])
        if n > (2 if m["api"] == "Produce" else 1):
            continue
        size = os.path.getsize(os.path.join(src, f))
        if m["api"] in ("Produce", "Fetch") and size > MAX_DATA_FRAME:
            print("skip %s (%d bytes)" % (f, size))
            continue
        picked.setdefault(m["client"], []).append(f)
    for client, files in sorted(picked.items()):
        d = os.path.join(golden, client)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        for f in files:
            shutil.copyfile(os.path.join(src, f), os.path.join(d, f))
        print("%s: %s" % (client, " ".join(f[len(client) + 1:-4] for f in files)))


if __name__ == "__main__":
    main()
