#!/bin/sh
# Step 50: interop, read side. The INTEROP store that step 10 wrote through the Node adapter must
# replay through the extension exactly as written (every column, payload text byte for byte), and
# agree with the adapter's own replay. See test/interop/read.js.
set -eu
cd "$(dirname "$0")/../.."
exec node test/interop/read.js
