#!/bin/bash
# Test step: the C SigV4 signer (src/sigv4.c) must produce exactly the
# Authorization header and canonical request of the AWS SDK's signer for
# AWS's published examples and 500 seeded random requests.  Builds
# test/sigv4/sigv4_check, runs test/sigv4/vectors.js; exit status = result.
set -euo pipefail
cd "$(dirname "$0")/../.."

test/sigv4/build.sh
node test/sigv4/vectors.js --count 500 --seed 20240229
