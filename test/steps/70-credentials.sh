#!/bin/sh
# Step 70: the AWS credential chain. Each source (environment, shared files, web identity through
# STS, the container endpoint, IMDSv2) against loopback stand-ins, in a throwaway cluster restarted
# with that environment; the refusal of ambient credentials to non-superusers; renewal before
# expiry and after ExpiredTokenException during a replay of the INTEROP store; and a grep of the
# server log for secrets. See test/credentials/run.js. Needs DDB_URL, S3_URL and step 10's stores.
set -eu
cd "$(dirname "$0")/../.."
exec node test/credentials/run.js
