#!/bin/sh
# Doxygen input filter for sdk/include/ewtp/*.h (docs/Doxyfile): the headers document with
# plain C comments. A comment opening a line documents what follows it; a comment after a
# member or an enumerator documents that member; the first comment of a header is the file's.
# Markdown files pass through unchanged.
case "$1" in
  *.h) ;;
  *) exec cat "$1" ;;
esac
exec sed -e '1s|^/\* |/** @file\n * |' \
         -e '2,$s|^\([[:space:]]*\)/\* |\1/** |' \
         -e 's|\([;,{]\)\([[:space:]]*\)/\* |\1\2/**< |' "$1"
