#!/usr/bin/env bash
# A 100,000,000-byte English text from Debian packages, for measuring the pipeline at enwik8's
# size where enwik8 itself cannot be downloaded: the GNU Collaborative International Dictionary
# of English (dict-gcide), then the Linux 6.1 documentation's reStructuredText sources and its
# HTML pages (linux-doc-6.1), cut at 10^8 bytes. Markup around prose, like enwik's XML and wiki
# text, but not enwik: sizes on it compare compressors with each other, not with enwik8 results.
#
#   bash benchmarks/large_text.sh OUT_DIR     # writes OUT_DIR/mixed100.txt and prints its md5
#
# Needs apt-get (downloads two .deb files, ~52 MB; nothing is installed). The packages' versions
# decide the bytes: with dict-gcide 0.48.5+nmu2 and linux-doc-6.1 6.1.176-1 the md5 is
# ff44fd48eac797e6f244f8de82c11534.
set -euo pipefail
out=$(realpath "${1:?usage: large_text.sh OUT_DIR}")
mkdir -p "$out/debs"
cd "$out/debs"
apt-get download dict-gcide linux-doc-6.1
for deb in dict-gcide_*.deb linux-doc-6.1_*.deb; do dpkg-deb -x "$deb" x; done
{
    zcat x/usr/share/dictd/gcide.dict.dz
    find x -name "*.rst.txt" | LC_ALL=C sort | xargs cat
    find x -name "*.html" | LC_ALL=C sort | xargs cat
} | head -c 100000000 > "$out/mixed100.txt" || true  # head closes the pipe early: cat's SIGPIPE is expected
test "$(stat -c %s "$out/mixed100.txt")" = 100000000
md5sum "$out/mixed100.txt"
