'use strict'
// Client-matrix scenario for kafkajs (see ../README.md).
//
//   node scenario.js BOOTSTRAP TOPIC_PREFIX
//
// 1. admin.createTopics: one 3-partition topic.
// 2. producer.send once per codec (none, gzip, snappy, lz4, zstd), acks=-1:
//    keyed and unkeyed records, headers (with a repeated key), null keys,
//    null values, empty values, explicit CreateTime timestamps.
// 3. Read everything back from offset 0 of each partition without a consumer
//    group. kafkajs has no assign(): its public consumer always joins a group.
//    The lowest level kafkajs offers is its own Cluster/Broker layer (the
//    one its consumer uses underneath): Broker.fetch() plus the consumer's
//    Batch class, which decodes record batches with the registered codecs
//    and drops control records exactly as consumer.run() would.
// 4. admin.fetchTopicOffsets (earliest/latest) and
//    admin.fetchTopicOffsetsByTimestamp.
//
// Exits 0 and prints `RESULT kafkajs <version> ok` only if every check passed.

const {
  Kafka,
  logLevel,
  CompressionTypes,
  CompressionCodecs,
  Partitioners,
} = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const LZ4Codec = require('kafkajs-lz4')
const zstd = require('zstd-napi')
const Batch = require('kafkajs/src/consumer/batch')
const ISOLATION_LEVEL = require('kafkajs/src/protocol/isolationLevel')
const KAFKAJS_VERSION = require('kafkajs/package.json').version

// Codecs that kafkajs leaves to plug-ins, registered the documented way.
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
// No published kafkajs zstd plug-in installs here (@kafkajs/zstd's native
// cppzst does not compile against Node 20; @sensejs/kafkajs-zstd-support
// 0.11.0 ships broken CommonJS), so this is the same few lines they contain,
// over zstd-napi (built from source by npm).
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress(encoder) {
    return zstd.compress(encoder.buffer)
  },
  async decompress(buffer) {
    return zstd.decompress(buffer)
  },
})

// Count decompressions per codec, to check that what comes back from the
// broker is still compressed with the codec it was produced with (Kafka
// keeps the producer's batches when compression.type=producer, the default).
const decompressed = {}
for (const type of [CompressionTypes.GZIP, CompressionTypes.Snappy, CompressionTypes.LZ4, CompressionTypes.ZSTD]) {
  const factory = CompressionCodecs[type]
  decompressed[type] = 0
  CompressionCodecs[type] = () => {
    const codec = factory()
    return {
      compress: encoder => codec.compress(encoder),
      decompress: buffer => {
        decompressed[type]++
        return codec.decompress(buffer)
      },
    }
  }
}

const CODECS = [
  ['none', CompressionTypes.None],
  ['gzip', CompressionTypes.GZIP],
  ['snappy', CompressionTypes.Snappy],
  ['lz4', CompressionTypes.LZ4],
  ['zstd', CompressionTypes.ZSTD],
]
const PARTITIONS = 3
const KEYS = ['alpha', 'bravo', 'charlie', 'delta', 'echo']

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

// The records of one produce call. Every record carries a unique id in a
// header so a mismatch can be reported precisely.
function makeRecords(codec, firstSeq, baseTs) {
  const recs = []
  const add = r => {
    const seq = firstSeq + recs.length
    r.seq = seq
    r.timestamp = String(baseTs + seq * 10)
    r.headers = Object.assign({ id: `${codec}-${seq}` }, r.headers || {})
    recs.push(r)
  }
  const filler = `${codec} payload that compresses well `.repeat(8)
  // Keyed records, several per key (per-key order), default partitioner.
  for (let round = 0; round < 4; round++) {
    for (const k of KEYS) {
      add({
        key: Buffer.from(k),
        value: Buffer.from(`${k}#${round} ${filler}`),
        headers: round % 2 ? { 'rep-key': ['first', 'second', ''], single: 'x' } : undefined,
      })
    }
  }
  // Unkeyed records (null key), placed explicitly so the partition is known.
  for (let i = 0; i < 6; i++) {
    add({ key: null, value: Buffer.from(`unkeyed#${i} ${filler}`), partition: i % PARTITIONS })
  }
  // Null value (tombstone) with a key, empty value with a key,
  // null key + empty value, null key + null value.
  add({ key: Buffer.from('alpha'), value: null })
  add({ key: Buffer.from('bravo'), value: Buffer.alloc(0) })
  add({ key: null, value: Buffer.alloc(0), partition: 1 })
  add({ key: null, value: null, partition: 2, headers: { 'rep-key': ['a', 'a'] } })
  // Empty key (not null).
  add({ key: Buffer.alloc(0), value: Buffer.from(`empty-key ${filler}`) })
  return recs
}

// Headers as kafkajs' decoder returns them: { key: Buffer | Buffer[] }.
function headersEq(expected, got) {
  const ek = Object.keys(expected)
  const gk = Object.keys(got || {})
  if (ek.length !== gk.length || !ek.every(k => gk.includes(k))) return false
  return ek.every(k => {
    const e = expected[k]
    const g = got[k]
    if (Array.isArray(e)) {
      return Array.isArray(g) && g.length === e.length && e.every((v, i) => bufEq(v, g[i]))
    }
    return !Array.isArray(g) && bufEq(e, g)
  })
}
function showHeaders(h) {
  const o = {}
  for (const [k, v] of Object.entries(h || {})) {
    o[k] = Array.isArray(v) ? v.map(x => Buffer.from(x).toString()) : Buffer.from(v).toString()
  }
  return JSON.stringify(o)
}

async function main() {
  const [bootstrap, prefix] = process.argv.slice(2)
  if (!bootstrap || prefix === undefined) {
    console.error('usage: node scenario.js BOOTSTRAP TOPIC_PREFIX')
    process.exit(2)
  }
  const topic = `${prefix}kafkajs-${Date.now().toString(36)}`
  console.log(`kafkajs ${KAFKAJS_VERSION} bootstrap=${bootstrap} topic=${topic}`)

  const kafka = new Kafka({
    clientId: 'gregor-matrix-kafkajs',
    brokers: [bootstrap],
    logLevel: logLevel.WARN,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 3 },
  })
  const admin = kafka.admin()
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  })
  const closers = []
  try {
    // 1. CreateTopics through the admin API.
    step('create-topic')
    await admin.connect()
    closers.push(() => admin.disconnect())
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: 30000,
    })
    check(created === true, `createTopics returned ${created}, expected true (new topic)`)
    const meta = await admin.fetchTopicMetadata({ topics: [topic] })
    const parts = meta.topics[0].partitions
    check(parts.length === PARTITIONS, `metadata shows ${parts.length} partitions, expected ${PARTITIONS}`)
    check(parts.every(p => p.leader >= 0), `a partition has no leader: ${JSON.stringify(parts)}`)

    // 2. Produce once per codec, acks=all.
    step('produce')
    await producer.connect()
    closers.push(() => producer.disconnect())
    // Expected partition of keyed records: kafkajs' default (Java-compatible
    // murmur2) partitioner, which the producer applies itself.
    const partitionOf = Partitioners.DefaultPartitioner()
    const partitionMetadata = parts.map(p => ({ partitionId: p.partitionId, leader: p.leader }))
    const baseTs = Date.now() - 10 * 60 * 1000
    const expected = Array.from({ length: PARTITIONS }, () => [])
    let seq = 0
    for (const [name, type] of CODECS) {
      const recs = makeRecords(name, seq, baseTs)
      seq += recs.length
      const messages = recs.map(r => {
        const m = { key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp }
        if (r.partition !== undefined) m.partition = r.partition
        return m
      })
      let meta
      try {
        meta = await producer.send({ topic, acks: -1, timeout: 30000, compression: type, messages })
      } catch (e) {
        throw new CheckFailed(`produce ${name}: send failed: ${e.stack || e}`)
      }
      for (const r of recs) {
        r.partition =
          r.partition !== undefined ? r.partition : partitionOf({ topic, partitionMetadata, message: r })
        r.codec = name
        r.offset = expected[r.partition].length
        expected[r.partition].push(r)
      }
      // One RecordMetadata per partition written; baseOffset is the offset
      // of the first record of this call in that partition.
      for (let p = 0; p < PARTITIONS; p++) {
        const mine = recs.filter(r => r.partition === p)
        const rm = meta.find(m => m.partition === p)
        if (mine.length === 0) continue
        check(rm !== undefined, `produce ${name}: no ack for partition ${p}: ${JSON.stringify(meta)}`)
        check(rm.errorCode === 0, `produce ${name}: partition ${p} errorCode ${rm.errorCode}`)
        check(
          String(rm.baseOffset) === String(mine[0].offset),
          `produce ${name}: partition ${p} baseOffset ${rm.baseOffset}, expected ${mine[0].offset}`
        )
      }
      console.log(`  produced ${recs.length} records with ${name}`)
    }
    const counts = expected.map(e => e.length)
    console.log(`  per-partition counts ${JSON.stringify(counts)}`)

    // 3. Read back from offset 0 without a group (see header comment).
    step('consume')
    const createCluster =
      kafka[Object.getOwnPropertySymbols(kafka).find(s => s.description === 'private:Kafka:createCluster')]
    check(typeof createCluster === 'function', 'kafkajs internals changed: no createCluster')
    const cluster = createCluster({ metadataMaxAge: 300000, allowAutoTopicCreation: false })
    await cluster.connect()
    closers.push(() => cluster.disconnect())
    await cluster.addTargetTopic(topic)
    const got = Array.from({ length: PARTITIONS }, () => [])
    const next = new Array(PARTITIONS).fill(0)
    const deadline = Date.now() + 30000
    while (next.some((n, p) => n < counts[p])) {
      check(Date.now() < deadline, `timed out: read ${JSON.stringify(next)} of ${JSON.stringify(counts)}`)
      const wanted = [...Array(PARTITIONS).keys()].filter(p => next[p] < counts[p])
      const byLeader = cluster.findLeaderForPartitions(topic, wanted)
      for (const [nodeId, ps] of Object.entries(byLeader)) {
        const broker = await cluster.findBroker({ nodeId })
        const resp = await broker.fetch({
          isolationLevel: ISOLATION_LEVEL.READ_COMMITTED,
          maxWaitTime: 500,
          minBytes: 1,
          maxBytes: 1 << 20,
          topics: [
            { topic, partitions: ps.map(p => ({ partition: p, fetchOffset: String(next[p]), maxBytes: 1 << 20 })) },
          ],
        })
        for (const t of resp.responses) {
          check(t.topicName === topic, `fetch answered for topic ${t.topicName}`)
          for (const pd of t.partitions) {
            check(pd.errorCode === 0, `fetch partition ${pd.partition} errorCode ${pd.errorCode}`)
            check(
              String(pd.highWatermark) === String(counts[pd.partition]),
              `fetch partition ${pd.partition} highWatermark ${pd.highWatermark}, expected ${counts[pd.partition]}`
            )
            const batch = new Batch(topic, String(next[pd.partition]), pd)
            for (const m of batch.messages) {
              got[pd.partition].push(m)
              next[pd.partition] = Number(m.offset) + 1
            }
          }
        }
      }
    }
    for (let p = 0; p < PARTITIONS; p++) {
      check(got[p].length === counts[p], `partition ${p}: read ${got[p].length} records, expected ${counts[p]}`)
      const lastSeqByKey = new Map()
      got[p].forEach((m, i) => {
        const e = expected[p][i]
        const where = `partition ${p} offset ${i} (${e.headers.id})`
        check(String(m.offset) === String(i), `${where}: offset ${m.offset}, offsets not contiguous from 0`)
        check(bufEq(e.key, m.key), `${where}: key ${show(m.key)}, expected ${show(e.key)}`)
        check(bufEq(e.value, m.value), `${where}: value ${show(m.value)}, expected ${show(e.value)}`)
        check(
          headersEq(e.headers, m.headers),
          `${where}: headers ${showHeaders(m.headers)}, expected ${showHeaders(e.headers)}`
        )
        check(String(m.timestamp) === e.timestamp, `${where}: timestamp ${m.timestamp}, expected ${e.timestamp}`)
        if (m.key !== null) {
          const k = Buffer.from(m.key).toString()
          const seqNo = Number(Buffer.from(m.headers.id).toString().split('-')[1])
          check(!(lastSeqByKey.get(k) >= seqNo), `${where}: key ${k} out of order`)
          lastSeqByKey.set(k, seqNo)
        }
      })
    }
    for (const [name, type] of CODECS) {
      if (type === CompressionTypes.None) continue
      check(decompressed[type] > 0, `no ${name} batch came back: the broker did not keep the producer's compression`)
    }
    console.log(
      `  read back ${got.reduce((a, g) => a + g.length, 0)} records, all match; decompressed batches: ` +
        CODECS.filter(([, t]) => t !== CompressionTypes.None).map(([n, t]) => `${n}=${decompressed[t]}`).join(' ')
    )

    // 4. ListOffsets.
    step('list-offsets')
    const offs = await admin.fetchTopicOffsets(topic)
    check(offs.length === PARTITIONS, `fetchTopicOffsets gave ${offs.length} partitions`)
    for (const o of offs) {
      check(String(o.low) === '0', `partition ${o.partition} earliest ${o.low}, expected 0`)
      check(String(o.high) === String(counts[o.partition]), `partition ${o.partition} latest ${o.high}, expected ${counts[o.partition]}`)
      check(String(o.offset) === String(counts[o.partition]), `partition ${o.partition} offset ${o.offset}, expected ${counts[o.partition]}`)
    }
    // A timestamp between two produced records: each partition answers the
    // first offset whose timestamp is at or after it (kafkajs substitutes the
    // latest offset when the broker answers -1, i.e. no such record).
    const probes = [
      baseTs - 60000, // before everything: 0 everywhere
      Number(expected[0][Math.floor(counts[0] / 2)].timestamp) - 5, // between two records
      baseTs + Math.floor(seq / 3) * 10 + 5,
      baseTs + seq * 10 + 60000, // after everything: latest
    ]
    for (const ts of probes) {
      const byTs = await admin.fetchTopicOffsetsByTimestamp(topic, ts)
      check(byTs.length === PARTITIONS, `fetchTopicOffsetsByTimestamp gave ${byTs.length} partitions`)
      for (const o of byTs) {
        const first = expected[o.partition].find(r => Number(r.timestamp) >= ts)
        const want = first ? first.offset : counts[o.partition]
        check(
          String(o.offset) === String(want),
          `by timestamp ${ts}: partition ${o.partition} offset ${o.offset}, expected ${want}`
        )
      }
    }
    console.log('  earliest, latest and by-timestamp offsets match')

  } finally {
    for (const c of closers.reverse()) {
      await c().catch(() => {})
    }
  }
}

main().then(
  () => {
    // Printed after every client is closed, so that it is the last line.
    console.log(`RESULT kafkajs ${KAFKAJS_VERSION} ok`)
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
