# The deliberate bugs of the mutation check (test/mutation/run.sh), one per line:
#   mutant NAME FILE PERL-EDIT CHECK...
# PERL-EDIT is run as `perl -0pi -e` on FILE (the whole file as one string) and must change it;
# each CHECK is what should catch the bug, in this order, stopping at the first that does:
#   regress:FILE[,FILE...]   those pg_regress files (make installcheck REGRESS=...)
#   clock                    test/steps/45-regress-clock.sh (the regress files at a month boundary)
#   faults                   test/interop/faults.js (the replay under faults)
#   write-faults             test/interop/write-faults.js
#   outcomes                 test/interop/outcomes.js (answers other than success to a commit)
#   feed:PATTERN             the cases of test/workers/feed.js (step 86) whose name matches PATTERN
#                            (a regular expression without spaces)
# shellcheck shell=bash

# A Put without its condition: an event with the id and created of another overwrites it.
mutant put-without-condition src/append.c \
    's/,\\"ConditionExpression\\":\\"attribute_not_exists\(id\)\\"//' \
    regress:promises

# UnprocessedKeys of a BatchGetItem answer dropped instead of sent again.
mutant unprocessed-keys-dropped src/dynamo.c \
    's/json_object_object_get_ex\(job->calls\[c\]->json, "UnprocessedKeys", &unprocessed\)/false/' \
    faults

# No Limit on the pages of a scan without a LIMIT: the first page is the whole month.
mutant first-page-without-limit src/scan.c \
    's/return \(int\) Min\(PAGE_LIMIT, Max\(FIRST_PAGE_LIMIT, walk->returned\)\);/return 0;/' \
    regress:promises

# No Limit on the Queries of a scan with a LIMIT: LIMIT 10 hydrates the whole month.
mutant limit-without-query-limit src/scan.c \
    's/return \(int\) Max\(1, Min\(Max\(limit_needs\(walk\) \+ 1, 2 \* walk->ncarry\), PAGE_LIMIT\)\);/return 0;/' \
    regress:promises

# The walk's last month from the real clock, whatever the test clock says.
mutant clock-ignored-by-walk src/clock.c \
    's/return test_now_set \? test_now_value : GetCurrentTransactionStartTimestamp\(\);/return GetCurrentTransactionStartTimestamp();/' \
    clock

# A default created from the real clock, whatever the test clock says.
mutant clock-ignored-by-created src/clock.c \
    's/return test_now_set \? test_now_value : GetCurrentTimestamp\(\);/return GetCurrentTimestamp();/' \
    clock

# reset_store and TRUNCATE allowed inside a transaction block again.
mutant reset-in-transaction src/admin.c \
    's/if \(IsTransactionBlock\(\) \|\| IsSubTransaction\(\)\)/if (false)/' \
    regress:write

# After a failed DynamoDB transaction of a commit, the next ones are still sent.
mutant write-on-after-failure src/append.c \
    's/if \(f->failed\)\n(\t+)t->state = TXN_DONE;/if (false)\n$1t->state = TXN_DONE;/' \
    regress:promises

# max_in_flight ignored by the scheduler.
mutant max-in-flight-ignored src/scheduler.c \
    's/http_in_flight\(\) < call->conn->max_in_flight/http_in_flight() < 64/' \
    regress:promises

# Stream heads read 50 to a BatchGetItem instead of 100.
mutant head-batches-of-50 src/dynamo.c \
    's/#define BATCH_GET_MAX_KEYS 100/#define BATCH_GET_MAX_KEYS 50/' \
    regress:promises

# No ProjectionExpression: every attribute of every item fetched.
mutant no-projection src/dynamo.c \
    's/\tif \(attrs == NULL\)\n\t\treturn NULL;/\tif (attrs != NULL || attrs == NULL)\n\t\treturn NULL;/' \
    regress:promises

# Transactions of a commit up to 8 MB: DynamoDB refuses the larger ones.
mutant transactions-over-4mb src/append.c \
    's/#define TXN_MAX_BYTES \(4 \* 1024 \* 1024 - 64 \* 1024\)/#define TXN_MAX_BYTES (8 * 1024 * 1024)/' \
    regress:promises

# Given ids are not looked up by default.
mutant given-ids-unchecked src/option.c \
    's/opts->check_given_ids = true;/opts->check_given_ids = false;/' \
    regress:write,promises

# A new stream's head written without its condition: a concurrent first writer is not noticed.
mutant new-stream-head-unconditional src/append.c \
    's/"attribute_not_exists\(#v\) OR #v = :expected"/"attribute_not_exists(#v) OR #v <> :expected OR #v = :expected"/' \
    regress:write write-faults

# A given id that starts with EventID# loses it.
mutant given-id-prefix-stripped src/item.c \
    's/(\t\t\tev->id_given = true;\n)/$1\t\t\tif (strncmp(ev->id, ESD_ID_PREFIX, strlen(ESD_ID_PREFIX)) == 0)\n\t\t\t\tev->id += strlen(ESD_ID_PREFIX);\n/' \
    regress:hardening

# The retries of a throttled request are not spaced: no backoff at all.
mutant no-backoff src/aws.c \
    's/call->due = GetCurrentTimestamp\(\) \+ \(TimestampTz\) aws_backoff_ms\(conn, call->attempts\) \* 1000;/call->due = GetCurrentTimestamp();/' \
    regress:promises

# An event body uploaded without the Node adapter's ACL header.
mutant upload-without-acl src/aws.c \
    's/\tcall->acl = "private";\n//' \
    regress:security

# An event body uploaded with a wrong CRC-32 (S3 refuses a body damaged on the way).
mutant upload-checksum-wrong src/aws.c \
    's/uint32\t\tcrc = 0xFFFFFFFF;/uint32\t\tcrc = 0;/' \
    regress:security

# The item named in full in the context line of a value that cannot be read.
mutant bad-item-id-in-full src/row.c \
    's/esd_shorten\(c->item_id\)/c->item_id/' \
    regress:baditems

# TransactionInProgressException taken as a plain failure: not retried with the same token.
mutant in-progress-not-retried src/aws.c \
    's/strcmp\(call->error_type, "TransactionInProgressException"\) == 0/false/' \
    outcomes

# A cancellation after an unanswered attempt taken at its word: an applied commit reported as a conflict.
mutant cancel-after-lost-answer-believed src/append.c \
    's/bool\t\tearlier_doubt = t->maybe_applied \|\| t->call.attempts >= 2;/bool\t\tearlier_doubt = false;/' \
    outcomes

# A commit's transaction cancelled for TransactionConflict (it wrote nothing) not sent again.
mutant conflict-cancel-not-retried src/append.c \
    's/if \(strcmp\(c, "TransactionConflict"\) != 0 && strcmp\(c, "ThrottlingError"\) != 0 &&/if (strcmp(c, "ThrottlingError") != 0 \&\&/' \
    outcomes

# A commit's transaction cancelled for ConditionalCheckFailed (a moved head, an existing id) sent
# again, as if it might pass.
mutant conditional-cancel-retried src/append.c \
    's/strcmp\(c, "ProvisionedThroughputExceeded"\) != 0\)/strcmp(c, "ProvisionedThroughputExceeded") != 0 \&\& strcmp(c, "ConditionalCheckFailed") != 0)/' \
    outcomes

# A commit's transaction cancelled for ProvisionedThroughputExceeded (capacity: it wrote nothing)
# not sent again.
mutant capacity-cancel-not-retried src/append.c \
    's/ &&\n\t\t\tstrcmp\(c, "ProvisionedThroughputExceeded"\) != 0\)/)/' \
    outcomes

# A transaction sent again after a cancellation under the token of the cancelled round.
mutant cancel-retry-same-token src/append.c \
    's/\t\tt->token = esd_uuid_v4\(\);\n//' \
    outcomes

# A commit's transaction cancelled for ThrottlingError reported as a conflict (40001).
mutant throttling-cancel-as-conflict src/append.c \
    's/strcmp\(c, "ThrottlingError"\) == 0 \|\|/false ||/' \
    outcomes

# The consistent second look limited to as many keys as the round before it asked.
mutant second-look-by-round-keys src/dynamo.c \
    's/for \(int i = 0; i < job->nall && nretry < job->nall; i\+\+\)/for (int i = 0; i < job->nall \&\& nretry < job->nkeys; i++)/' \
    outcomes

# A stream read walked for want of streamIndex returned in created order, not sequence order.
mutant stream-walk-unsorted src/scan.c \
    's/if \(!walk->stream_walked\)\n(\t+)sort_events/if (true)\n$1sort_events/' \
    regress:pushdown

# The backoff does not grow: every retry waits about retry_base_ms.
mutant backoff-not-exponential src/aws.c \
    's/\t\tceiling \*= 2;/\t\tceiling *= 1;/' \
    regress:promises

# connect_timeout_ms not given to libcurl: a connection that never completes waits for the
# request timeout.
mutant connect-timeout-ignored src/http.c \
    's/\tcurl_easy_setopt\(easy, CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms\);\n//' \
    regress:promises

# Every request on its own: the scheduler never has two under way, whatever max_in_flight says.
mutant in-flight-serialized src/scheduler.c \
    's/http_in_flight\(\) < call->conn->max_in_flight/http_in_flight() < 1/' \
    regress:promises

# enable_change_feed and disable_change_feed allowed to the foreign table's owner alone.
mutant feed-without-server-owner src/admin.c \
    's/return superuser_arg\(userid\) \|\|\n\t\tpg_foreign_server_ownercheck/return true ||\n\t\tpg_foreign_server_ownercheck/' \
    regress:feed,security

# The serializable check left to CommitTransaction, after the events went out: a write-skew
# transaction's event reaches DynamoDB and its retry's is refused.
mutant serializable-check-after-send src/append.c \
    's/if \(IsolationIsSerializable\(\)\)\n(\t+)PreCommit_CheckForSerializationFailure\(\);/if (false)\n$1PreCommit_CheckForSerializationFailure();/' \
    regress:commits

# repartition_projection records the ids seen in partition 0 only: the new partitions' main pass
# applies again what the partitions that were ahead had applied after the common position.
mutant repartition-seen-in-partition-0 sql/event_store_dynamo--0.4--0.5.sql \
    's/ON nr\.generation = k AND \(nr\.part = 0 OR s\.created IS NULL OR s\.created >= common\)/ON nr.generation = k AND nr.part = 0/' \
    regress:partitions

# repartition_projection leaves every stream head in partition 0: a stream that moved elsewhere
# starts again from sequence 0, and its next event is held behind events already applied.
mutant repartition-heads-in-partition-0 sql/event_store_dynamo--0.4--0.5.sql \
    's/AND nr\.generation = k AND nr\.part = event_store_dynamo\._partition_of\(s\.domain, s\.identifier, n\);/AND nr.generation = k AND nr.part = 0;/' \
    regress:partitions

# Change feed: a child shard read before its parent was read to its end.
mutant feed-child-before-parent src/feed.c \
    's/\treturn parent == NULL \|\| parent->ended;/\treturn true;/' \
    feed:closed.parent

# Change feed: an expired iterator taken for the end of its shard.
mutant feed-expired-as-end-of-shard src/feed.c \
    's/(\t\tif \(call->failed && !renewed &&\n)/\t\tif (call_failed_with(call, "ExpiredIteratorException"))\n\t\t{\n\t\t\tend_shard(s);\n\t\t\treturn records;\n\t\t}\n$1/' \
    feed:expired.iterator

# Change feed: a shard without a position read from LATEST again after a restart or an expiry.
mutant feed-latest-again src/feed.c \
    's/\ts->next_from_start = true;\n\tfor \(int page/\tfor (int page/' \
    feed:closed.parent feed:expired.iterator

# Change feed: no DescribeStream when a shard ends: its children wait for the periodic one.
mutant feed-ended-without-describe src/feed.c \
    's/(\ts->next_ended = true;\n)\tfeed.need_describe = true;\n/$1/' \
    feed:split feed:disappear

# Change feed: DescribeStream's first page taken for the whole listing.
mutant feed-describe-first-page-only src/feed.c \
    's/last = json_string\(desc, "LastEvaluatedShardId"\);/last = NULL;/' \
    feed:split

# Change feed: a trimmed position given up without starting again at the trim horizon.
mutant feed-trimmed-position-kept src/feed.c \
    's/\t\t\ts->next_from_start = true;\n\t\t\tcontinue;/\t\t\ts->next_from_start = false;\n\t\t\tcontinue;/' \
    feed:trim.horizon

# Streams throttling (LimitExceededException) taken for a refusal of the position.
mutant streams-throttling-not-retried src/aws.c \
    's/\t"LimitExceededException",[^\n]*\n//' \
    feed:expired.iterator

# Change feed: shards read to their end and trimmed away kept (and written again every round) for good.
mutant feed-gone-shards-kept src/feed.c \
    's/\t\t\tforget_shard\(s\);\n\t\t\tfeed.shards = foreach_delete_current\(feed.shards, lc\);\n//' \
    feed:disappear
