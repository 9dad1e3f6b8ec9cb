#!/bin/sh
# Builds test/sigv4/sigv4_check: src/sigv4.c compiled as frontend code and
# linked with PostgreSQL's libpgcommon/libpgport, OpenSSL and json-c, so the
# signer can be cross-checked outside a backend (see vectors.js).
set -eu
cd "$(dirname "$0")/../.."

PG_CONFIG=${PG_CONFIG:-pg_config}
INCLUDEDIR_SERVER=$("$PG_CONFIG" --includedir-server)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
CC=${CC:-gcc}

# libpgcommon/libpgport live in --pkglibdir on Debian, --libdir elsewhere.
LIBDIRS="-L$PKGLIBDIR -L$("$PG_CONFIG" --libdir)"

$CC -std=gnu99 -O2 -Wall -Wextra -DFRONTEND \
	-Isrc -I"$INCLUDEDIR_SERVER" \
	-o test/sigv4/sigv4_check \
	test/sigv4/sigv4_check.c src/sigv4.c \
	$LIBDIRS -lpgcommon -lpgport -ljson-c -lssl -lcrypto -lm
