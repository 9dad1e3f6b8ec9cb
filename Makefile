# event_store_dynamo: PGXS build
#
#   make && make install          build and install into the PostgreSQL found by pg_config
#   make installcheck             pg_regress against a running cluster and local stack
#                                 (test/run-tests.sh sets both up)

MODULE_big = event_store_dynamo
OBJS = \
	src/event_store_dynamo.o \
	src/option.o \
	src/scan.o \
	src/plan.o \
	src/row.o \
	src/item.o \
	src/append.o \
	src/dynamo.o \
	src/aws.o \
	src/scheduler.o \
	src/credentials.o \
	src/http.o \
	src/sigv4.o \
	src/codec.o \
	src/admin.o \
	src/store.o \
	src/worker.o \
	src/feed.o \
	src/clock.o

EXTENSION = event_store_dynamo
DATA = sql/event_store_dynamo--0.1.sql sql/event_store_dynamo--0.1--0.2.sql sql/event_store_dynamo--0.2--0.3.sql sql/event_store_dynamo--0.3--0.4.sql sql/event_store_dynamo--0.4--0.5.sql
PGFILEDESC = "event_store_dynamo - DynamoDB event store foreign-data wrapper"

REGRESS = options read errors write pushdown admin credentials baditems hardening privileges projection cost security cursors longkeys commits parallel workers partitions promises feed
# pg_regress runs psql through test/regress/psql, which drops the LOCATION lines of the verbose
# error reports (every file sets VERBOSITY verbose, so that each error shows its SQLSTATE)
REGRESS_OPTS = --load-extension=event_store_dynamo --bindir=$(abspath $(srcdir))/test/regress

PG_CPPFLAGS = -I$(srcdir)/src -isystem $(shell $(PG_CONFIG) --includedir-server) -isystem $(shell $(PG_CONFIG) --includedir-server)/../internal -Wall -Wextra
SHLIB_LINK = -lcurl -ljson-c -lcrypto

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# the real psql behind test/regress/psql
export ESD_REAL_PSQL = $(bindir)/psql

# every object depends on the project's headers (PGXS tracks no header dependencies)
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# Fuzzing of the codec and the response parsers with libFuzzer, as the test command's step 80
# runs it (test/fuzz/README.md; ESD_FUZZ_SECONDS, ESD_FUZZ_SEED, ESD_FUZZ_TARGETS apply)
.PHONY: fuzz
fuzz:
	bash $(srcdir)/test/steps/80-fuzz.sh
