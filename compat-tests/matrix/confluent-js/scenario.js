'use strict'
// Client-matrix scenario for @confluentinc/kafka-javascript (see ../README.md),
// through its node-rdkafka-style API, the one that has KafkaConsumer.assign()
// (its KafkaJS-compatible consumer has no assign: it always joins a group).
//
//   node scenario.js BOOTSTRAP TOPIC_PREFIX
//
// 1. AdminClient.createTopic: one 3-partition topic.
// 2. One Producer per codec (compression.codec none, gzip, snappy, lz4, zstd),
//    acks=all, delivery reports on: keyed and unkeyed records, headers (with
//    a repeated key), null keys, null values, empty values, explicit
//    timestamps.
// 3. KafkaConsumer.assign() every partition at offset 0 and read everything
//    back. librdkafka's C++ KafkaConsumer insists on a group.id, but with
//    explicit offsets, no subscribe() and no commits it sends no group
//    request that the read depends on.
// 4. ListOffsets: AdminClient.listOffsets (EARLIEST, LATEST, timestamps) and
//    the consumer's queryWatermarkOffsets and offsetsForTimes.
//
// Exits 0 and prints `RESULT confluent-js <version> ok` only if every check
// passed.

const Kafka = require('@confluentinc/kafka-javascript')
const PKG = require('@confluentinc/kafka-javascript/package.json')

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd']
const PARTITIONS = 3
const KEYS = ['alpha', 'bravo', 'charlie', 'delta', 'echo']
const TIMEOUT_MS = 30000

class CheckFailed extends Error {}
let currentStep = 'setup'
function check(cond, what) {
  if (!cond) throw new CheckFailed(`${currentStep}: ${what}`)
}
function step(name) {
  currentStep = name
  console.log(`STEP ${name}`)
}
function bufEq(a, b) {
  if (a === null || a === undefined) return b === null || b === undefined
  if (b === null || b === undefined) return false
  return Buffer.from(a).equals(Buffer.from(b))
}
function show(b) {
  return b === null || b === undefined ? 'null' : JSON.stringify(Buffer.from(b).toString())
}
function cb2p(fn) {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))))
}
function withTimeout(promise, ms, what) {
  let t
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new CheckFailed(`${currentStep}: timed out after ${ms} ms ${what}`)), ms)
    }),
  ]).finally(() => clearTimeout(t))
}

// An empty (not null) value. The binding sends Buffer.alloc(0) as a null
// value: V8 gives an empty buffer no data pointer, and a null pointer is
// librdkafka's null. A zero-length view into a non-empty buffer has one.
const EMPTY_VALUE = Buffer.alloc(1).subarray(0, 0)

// The records of one producer (one codec). Every record carries a unique id
// header; headers are librdkafka's ordered list, so a key may repeat.
function makeRecords(codec, firstSeq, baseTs) {
  const recs = []
  const add = r => {
    const seq = firstSeq + recs.length
    r.seq = seq
    r.codec = codec
    r.timestamp = baseTs + seq * 10
    r.headers = [{ id: `${codec}-${seq}` }].concat(r.headers || [])
    recs.push(r)
  }
  const filler = `${codec} payload that compresses well `.repeat(8)
  // Keyed records, several per key (per-key order), default partitioner.
  for (let round = 0; round < 4; round++) {
    for (const k of KEYS) {
      add({
        key: Buffer.from(k),
        value: Buffer.from(`${k}#${round} ${filler}`),
        headers: round % 2 ? [{ 'rep-key': 'first' }, { single: 'x' }, { 'rep-key': Buffer.from('second') }, { 'rep-key': '' }] : [],
      })
    }
  }
  // Unkeyed records (null key), placed explicitly so the partition is known.
  for (let i = 0; i < 6; i++) {
    add({ key: null, value: Buffer.from(`unkeyed#${i} ${filler}`), partition: i % PARTITIONS })
  }
  // Null value (tombstone) with a key, empty value with a key,
  // null key + empty value, null key + null value, empty (not null) key.
  add({ key: Buffer.from('alpha'), value: null })
  add({ key: Buffer.from('bravo'), value: EMPTY_VALUE })
  add({ key: null, value: EMPTY_VALUE, partition: 1 })
  add({ key: null, value: null, partition: 2, headers: [{ 'rep-key': 'a' }, { 'rep-key': 'a' }] })
  // Empty (not null) key. Given as '' because the binding turns an empty
  // Buffer key into a null key (V8 gives empty buffers no data pointer); a
  // string key goes through std::string and stays empty. librdkafka's default
  // partitioner (consistent_random) places empty keys at random, like null
  // keys: place this one explicitly.
  add({ key: '', value: Buffer.from(`empty-key ${filler}`), partition: 0 })
  return recs
}

function headerPairs(hs) {
  return (hs || []).map(h => {
    const [k] = Object.keys(h)
    return [k, Buffer.from(h[k])]
  })
}
function headersEq(expected, got) {
  const e = headerPairs(expected)
  const g = headerPairs(got)
  return e.length === g.length && e.every(([k, v], i) => g[i][0] === k && v.equals(g[i][1]))
}
function showHeaders(hs) {
  return JSON.stringify(headerPairs(hs).map(([k, v]) => [k, v.toString()]))
}

function errorLogger(who) {
  let n = 0
  return err => {
    if (n++ < 5) console.error(`  (${who} event.error: ${err && err.message ? err.message : err})`)
  }
}

async function produceAll(bootstrap, topic, codec, recs) {
  const producer = new Kafka.Producer({
    'bootstrap.servers': bootstrap,
    'client.id': `gregor-matrix-confluent-js-${codec}`,
    acks: 'all',
    'compression.codec': codec,
    'linger.ms': 20,
    dr_cb: true,
    'message.timeout.ms': TIMEOUT_MS,
  })
  producer.on('event.error', errorLogger(`producer ${codec}`))
  const reports = new Map()
  let outstanding = recs.length
  let allDone
  const done = new Promise(resolve => (allDone = resolve))
  producer.on('delivery-report', (err, report) => {
    const r = recs[report.opaque]
    reports.set(report.opaque, { err, partition: report.partition, offset: report.offset })
    if (err) console.error(`  delivery of ${r.headers[0].id} failed: ${err.message || err}`)
    if (--outstanding === 0) allDone()
  })
  await withTimeout(cb2p(cb => producer.connect({ timeout: TIMEOUT_MS }, cb)), TIMEOUT_MS, `connecting the ${codec} producer`)
  producer.setPollInterval(10)
  try {
    recs.forEach((r, i) => {
      producer.produce(
        topic,
        r.partition === undefined ? null : r.partition, // null: the default partitioner
        r.value,
        r.key,
        r.timestamp,
        i,
        r.headers
      )
    })
    await withTimeout(cb2p(cb => producer.flush(TIMEOUT_MS, cb)), TIMEOUT_MS + 5000, `flushing ${codec}`)
    await withTimeout(done, TIMEOUT_MS, `waiting for ${codec} delivery reports`)
  } finally {
    await cb2p(cb => producer.disconnect(5000, cb)).catch(() => {})
  }
  return recs.map((r, i) => reports.get(i))
}

async function main() {
  const [bootstrap, prefix] = process.argv.slice(2)
  if (!bootstrap || prefix === undefined) {
    console.error('usage: node scenario.js BOOTSTRAP TOPIC_PREFIX')
    process.exit(2)
  }
  const topic = `${prefix}confluent-js-${Date.now().toString(36)}`
  console.log(
    `@confluentinc/kafka-javascript ${PKG.version} (librdkafka ${Kafka.librdkafkaVersion}) bootstrap=${bootstrap} topic=${topic}`
  )
  // A build must not silently load another librdkafka (Debian's 2.0.2 has the
  // same soname) than the one the package was built with.
  check(
    Kafka.librdkafkaVersion === PKG.librdkafka,
    `loaded librdkafka ${Kafka.librdkafkaVersion}, package built for ${PKG.librdkafka}`
  )
  for (const c of CODECS.slice(1)) check(Kafka.features.includes(c), `librdkafka built without ${c}`)

  const closers = []
  try {
    // 1. CreateTopics through the admin API.
    step('create-topic')
    const admin = Kafka.AdminClient.create({
      'bootstrap.servers': bootstrap,
      'client.id': 'gregor-matrix-confluent-js-admin',
    })
    closers.push(() => admin.disconnect())
    await withTimeout(
      cb2p(cb => admin.createTopic({ topic, num_partitions: PARTITIONS, replication_factor: 1 }, TIMEOUT_MS, cb)),
      TIMEOUT_MS + 5000,
      'creating the topic'
    )
    const [desc] = await cb2p(cb => admin.describeTopics([topic], { timeout: TIMEOUT_MS }, cb))
    check(desc.partitions.length === PARTITIONS, `describeTopics shows ${desc.partitions.length} partitions`)
    check(
      desc.partitions.every(p => p.leader && p.leader.id >= 0),
      `a partition has no leader: ${JSON.stringify(desc.partitions)}`
    )

    // 2. Produce with one producer per codec, acks=all.
    step('produce')
    const baseTs = Date.now() - 10 * 60 * 1000
    const all = []
    let seq = 0
    for (const codec of CODECS) {
      const recs = makeRecords(codec, seq, baseTs)
      seq += recs.length
      const reports = await produceAll(bootstrap, topic, codec, recs)
      recs.forEach((r, i) => {
        const dr = reports[i]
        check(dr && !dr.err, `${r.headers[0].id}: delivery failed: ${dr && dr.err}`)
        if (r.partition !== undefined) {
          check(dr.partition === r.partition, `${r.headers[0].id}: delivered to partition ${dr.partition}, asked ${r.partition}`)
        }
        check(dr.partition >= 0 && dr.partition < PARTITIONS, `${r.headers[0].id}: partition ${dr.partition}`)
        check(Number.isInteger(dr.offset) && dr.offset >= 0, `${r.headers[0].id}: delivery report offset ${dr.offset}`)
        r.partition = dr.partition
        r.offset = dr.offset
        all.push(r)
      })
      console.log(`  produced ${recs.length} records with ${codec}`)
    }
    // The delivered offsets of each partition are 0..n-1, and records of one
    // key all went to one partition, in the order produced.
    const expected = Array.from({ length: PARTITIONS }, () => [])
    for (const r of all) {
      check(expected[r.partition][r.offset] === undefined, `two records delivered at ${r.partition}/${r.offset}`)
      expected[r.partition][r.offset] = r
    }
    const counts = expected.map(e => e.length)
    for (let p = 0; p < PARTITIONS; p++) {
      for (let o = 0; o < counts[p]; o++) {
        check(expected[p][o] !== undefined, `delivery reports skip offset ${o} of partition ${p}`)
      }
    }
    const byKey = new Map()
    for (const r of all) {
      if (r.key === null) continue
      const k = r.key.toString()
      const prev = byKey.get(k)
      if (prev) {
        check(prev.partition === r.partition, `key ${JSON.stringify(k)} in partitions ${prev.partition} and ${r.partition}`)
        check(prev.offset < r.offset, `key ${JSON.stringify(k)}: ${r.headers[0].id} delivered before ${prev.headers[0].id}`)
      }
      byKey.set(k, r)
    }
    console.log(`  per-partition counts ${JSON.stringify(counts)}`)

    // 3. assign() from offset 0, no group membership.
    step('consume')
    const consumer = new Kafka.KafkaConsumer(
      {
        'bootstrap.servers': bootstrap,
        'client.id': 'gregor-matrix-confluent-js-consumer',
        'group.id': `${prefix}confluent-js-unused`,
        'enable.auto.commit': false,
        'enable.auto.offset.store': false,
        'fetch.wait.max.ms': 100,
      },
      { 'auto.offset.reset': 'error' }
    )
    consumer.on('event.error', errorLogger('consumer'))
    await withTimeout(cb2p(cb => consumer.connect({ timeout: TIMEOUT_MS }, cb)), TIMEOUT_MS, 'connecting the consumer')
    closers.push(() => cb2p(cb => consumer.disconnect(cb)))
    consumer.setDefaultConsumeTimeout(200)
    consumer.assign([...Array(PARTITIONS).keys()].map(p => ({ topic, partition: p, offset: 0 })))
    const got = Array.from({ length: PARTITIONS }, () => [])
    const deadline = Date.now() + TIMEOUT_MS
    while (got.some((g, p) => g.length < counts[p])) {
      check(
        Date.now() < deadline,
        `timed out: read ${JSON.stringify(got.map(g => g.length))} of ${JSON.stringify(counts)}`
      )
      const msgs = await cb2p(cb => consumer.consume(100, cb))
      for (const m of msgs) {
        check(m.topic === topic, `message from topic ${m.topic}`)
        check(m.partition >= 0 && m.partition < PARTITIONS, `message from partition ${m.partition}`)
        got[m.partition].push(m)
      }
    }
    for (let p = 0; p < PARTITIONS; p++) {
      check(got[p].length === counts[p], `partition ${p}: read ${got[p].length} records, expected ${counts[p]}`)
      got[p].forEach((m, i) => {
        const e = expected[p][i]
        const where = `partition ${p} offset ${i} (${e.headers[0].id})`
        check(m.offset === i, `${where}: offset ${m.offset}, offsets not contiguous from 0`)
        check(bufEq(e.key, m.key), `${where}: key ${show(m.key)}, expected ${show(e.key)}`)
        check(bufEq(e.value, m.value), `${where}: value ${show(m.value)}, expected ${show(e.value)}`)
        check(headersEq(e.headers, m.headers), `${where}: headers ${showHeaders(m.headers)}, expected ${showHeaders(e.headers)}`)
        check(m.timestamp === e.timestamp, `${where}: timestamp ${m.timestamp}, expected ${e.timestamp}`)
      })
    }
    console.log(`  read back ${got.reduce((a, g) => a + g.length, 0)} records, all match`)

    // 4. ListOffsets.
    step('list-offsets')
    const firstAtOrAfter = (p, ts) => {
      const r = expected[p].find(x => x.timestamp >= ts)
      return r ? r.offset : -1 // -1: no such record
    }
    const probes = [
      baseTs - 60000, // before everything: 0
      expected[0][Math.floor(counts[0] / 2)].timestamp - 5, // between two records
      baseTs + Math.floor(seq / 3) * 10 + 5,
      baseTs + seq * 10 + 60000, // after everything: none
    ]
    const parts = [...Array(PARTITIONS).keys()]
    const listOffsets = async spec => {
      const res = await cb2p(cb =>
        admin.listOffsets(parts.map(p => ({ topic, partition: p, offset: spec })), { timeout: TIMEOUT_MS }, cb)
      )
      check(res.length === PARTITIONS, `listOffsets gave ${res.length} answers`)
      const out = []
      for (const r of res) {
        check(!r.error, `listOffsets partition ${r.partition}: ${r.error && (r.error.message || r.error.code)}`)
        out[r.partition] = Number(r.offset)
      }
      return out
    }
    const earliest = await listOffsets(Kafka.OffsetSpec.EARLIEST)
    const latest = await listOffsets(Kafka.OffsetSpec.LATEST)
    for (const p of parts) {
      check(earliest[p] === 0, `admin listOffsets EARLIEST partition ${p}: ${earliest[p]}, expected 0`)
      check(latest[p] === counts[p], `admin listOffsets LATEST partition ${p}: ${latest[p]}, expected ${counts[p]}`)
    }
    for (const ts of probes) {
      const byTs = await listOffsets(new Kafka.OffsetSpec(ts))
      for (const p of parts) {
        const want = firstAtOrAfter(p, ts)
        check(byTs[p] === want, `admin listOffsets timestamp ${ts} partition ${p}: ${byTs[p]}, expected ${want}`)
      }
    }
    for (const p of parts) {
      const wm = await cb2p(cb => consumer.queryWatermarkOffsets(topic, p, TIMEOUT_MS, cb))
      check(wm.lowOffset === 0, `queryWatermarkOffsets partition ${p}: low ${wm.lowOffset}, expected 0`)
      check(wm.highOffset === counts[p], `queryWatermarkOffsets partition ${p}: high ${wm.highOffset}, expected ${counts[p]}`)
    }
    for (const ts of probes) {
      const res = await cb2p(cb =>
        consumer.offsetsForTimes(parts.map(p => ({ topic, partition: p, offset: ts })), TIMEOUT_MS, cb)
      )
      for (const r of res) {
        const want = firstAtOrAfter(r.partition, ts)
        check(!r.error, `offsetsForTimes partition ${r.partition}: ${r.error}`)
        check(r.offset === want, `offsetsForTimes ${ts} partition ${r.partition}: ${r.offset}, expected ${want}`)
      }
    }
    console.log('  earliest, latest and by-timestamp offsets match (admin and consumer)')

  } finally {
    for (const c of closers.reverse()) {
      try {
        await withTimeout(Promise.resolve(c()), 10000, 'closing')
      } catch (e) {
        // closing errors do not change the outcome
      }
    }
  }
}

main().then(
  () => {
    // Printed after every client is closed, so that it is the last line.
    console.log(`RESULT confluent-js ${PKG.version} ok`)
    process.exit(0)
  },
  e => {
    if (e instanceof CheckFailed) {
      console.error(`FAIL ${e.message}`)
    } else {
      console.error(`FAIL ${currentStep}: ${e && e.stack ? e.stack : e}`)
    }
    process.exit(1)
  }
)
