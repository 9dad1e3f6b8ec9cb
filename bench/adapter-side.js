// The Node side of the comparisons: the published adapter, @schemeless/event-store-adapter-dynamodb
// 5.0.0, loaded through test/interop/adapter.js (which applies the two fixes it needs to install and
// run, and explains them), used as an application would: getAllEvents for a replay, storeEvents in
// batches for an append.
'use strict';

const path = require('path');
const { makeRepo } = require('../test/interop/adapter');

// The adapter's own page iterator, the one getAllEvents returns. Constructed directly only to give it
// a start date, so that its walk covers the same month buckets as the SQL side's start_month.
const adapterDir = path.dirname(require('./modules').resolve('@schemeless/event-store-adapter-dynamodb/package.json'));
const { EventStoreDynamodbIterator } = require(path.join(adapterDir, 'dist', 'EventStore.dynamodb.iterator'));

/* The event as the adapter takes it: `created` a Date, absent keys left out. */
function toAdapterEvent(e) {
  const out = { id: e.id, domain: e.domain, type: e.type, created: new Date(e.created), payload: e.payload };
  for (const k of ['identifier', 'correlationId', 'causationId', 'meta'])
    if (e[k] !== undefined)
      out[k] = e[k];
  return out;
}

/*
 * Replays the store from `startMonth` (YYYY-MM) to the current month with the adapter's iterator at
 * its default page size (100, as getAllEvents uses); every event is materialised by the adapter
 * (payload parsed, offloaded bodies fetched). Resolves to { events, seconds }.
 */
async function adapterReplay(repo, startMonth) {
  const started = process.hrtime.bigint();
  const pages = new EventStoreDynamodbIterator(repo, 100, { startDate: new Date(`${startMonth}-01T00:00:00.000Z`) });
  await pages.init();
  let events = 0;
  let offloaded = 0;
  for await (const page of pages) {
    events += page.length;
    for (const e of page)
      if (e.s3Reference)
        offloaded++;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { events, offloaded, seconds };
}

/*
 * Appends `events` (created order) with storeEvents, `batch` events a call, one call after the
 * other, as a single writer does. The store must exist and be empty. Resolves to { events, seconds }.
 */
async function adapterAppend(repo, events, batch = 100) {
  const input = events.map(toAdapterEvent);
  const started = process.hrtime.bigint();
  for (let i = 0; i < input.length; i += batch)
    await repo.storeEvents(input.slice(i, i + batch));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { events: events.length, seconds };
}

module.exports = { makeRepo, toAdapterEvent, adapterReplay, adapterAppend };
