#!/bin/sh
# Step 86: the change feed (enable_change_feed, DynamoDB Local's Streams) read by background
# workers, in a throwaway cluster with the library in shared_preload_libraries: new events
# applied through the feed with the watermark an hour behind, events appended out of created
# order applied once and in stream order, the feed racing the index walk, a stream that is gone
# falling back to the index walk, positions kept across a restart; then, against the stack's
# scripted Streams front, what DynamoDB Local's Streams never show: a closed parent shard and its
# child (parent first, across a worker restart), a split found through a paged DescribeStream,
# expired iterators, positions before the trim horizon, shards that disappear, Streams throttling;
# every read model compared with a full recompute. See test/workers/feed.js. Needs DDB_URL,
# DDB_LOCAL_URL, DDB_STREAMS_URL and S3_URL.
set -eu
cd "$(dirname "$0")/../.."
exec node test/workers/feed.js
