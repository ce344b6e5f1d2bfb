#!/bin/sh
#  Regenerates configure and Makefile.in; they are never committed.
set -e
cd "$(dirname "$0")"
mkdir -p config m4
autoreconf --install --force --warnings=all
