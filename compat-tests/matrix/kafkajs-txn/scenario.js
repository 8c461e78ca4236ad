'use strict'
// Transactions scenario for kafkajs (see ../README.md for the contract).
//
//   node scenario.js BOOTSTRAP TOPIC_PREFIX
//
// Written the way a kafkajs user would, with kafkajs' documented
// transaction API:
//
//  1. two 3-partition topics, `in` and `out` (admin.createTopics);
//  2. a producer with transactionalId, idempotent: true and
//     maxInFlightRequests: 1 runs five transactions on `in`, committed and
//     aborted in turn (commit, abort, commit, abort, commit), each with 4
//     records per partition; every send's baseOffset is where Kafka puts it
//     (each transaction ends with one control record per partition);
//  3. admin.fetchTopicOffsets: the high watermark of every partition counts
//     the records and the control records;
//  4. consume-transform-produce: a consumer group with readUncommitted:
//     false reads `in` and must see exactly the committed records, in order
//     per partition, at their offsets; a transaction writes their
//     transformation to `out` and the input offsets with
//     transaction.sendOffsets, and is aborted: the group has no committed
//     offsets after it; the same again, committed: the group's offsets
//     (admin.fetchOffsets) are the next input offsets;
//  5. a fresh group with readUncommitted: false reads `out`: exactly the
//     committed transformations, in order, none of the aborted ones; one
//     with readUncommitted: true reads `in` and sees every record, aborted
//     ones included;
//  6. fencing: a second producer with the same transactionalId connects
//     (InitProducerId) while the first has a transaction open on a topic
//     `fence`; the first one's commit fails (INVALID_PRODUCER_EPOCH, as
//     Kafka 4.3.1 answers EndTxn v1), the second commits, and
//     readUncommitted: false sees only the second one's records, at the
//     offsets after the first one's records and its abort marker.
//
// Exits 0 and prints `RESULT kafkajs-txn <version> ok` only if every check
// passed. KAFKAJS_LOG=error|warn|info|debug turns kafkajs' own log on.

const { Kafka, logLevel } = require('kafkajs')
const KAFKAJS_VERSION = require('kafkajs/package.json').version

const PARTITIONS = 3
const PER_PART = 4
const OUTCOMES = ['commit', 'abort', 'commit', 'abort', 'commit']
const SPAN = PER_PART + 1 // the records of one transaction and its control record, per partition
const WAIT = 30000 // any single awaited condition
const LOG_LEVEL =
  { error: logLevel.ERROR, debug: logLevel.DEBUG, info: logLevel.INFO, warn: logLevel.WARN }[process.env.KAFKAJS_LOG] ||
  logLevel.NOTHING

const started = Date.now()
class CheckFailed extends Error {}
let currentStep = 'setup'
function check(cond, what) {
  if (!cond) throw new CheckFailed(`${currentStep}: ${what}`)
}
function step(name) {
  currentStep = name
  console.log(`STEP [${((Date.now() - started) / 1000).toFixed(2)}s] ${name}`)
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)

// Resolves when pred() holds, re-checked on every record and every 100 ms.
function waitFor(pred, ms, what, detail = () => '') {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + ms
    const timer = setInterval(() => {
      try {
        if (pred()) {
          clearInterval(timer)
          resolve()
        } else if (Date.now() > deadline) {
          clearInterval(timer)
          reject(new CheckFailed(`${currentStep}: timed out after ${ms} ms waiting for ${what} ${detail()}`))
        }
      } catch (e) {
        clearInterval(timer)
        reject(e)
      }
    }, 100)
  })
}

// Reads `topic` in a new consumer group until every partition holds
// `counts[p]` records; returns partition -> [{ offset, value }].
async function readGroup(kafka, closers, { topic, groupId, readUncommitted, counts, what, partitions = PARTITIONS }) {
  const consumer = kafka.consumer({
    groupId,
    readUncommitted,
    sessionTimeout: 10000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
  })
  closers.push(() => consumer.disconnect())
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  const got = Array.from({ length: partitions }, () => [])
  let crashed = null
  consumer.on(consumer.events.CRASH, e => {
    crashed = e.payload.error
  })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      got[partition].push({ offset: Number(message.offset), value: message.value.toString() })
    },
  })
  const have = () => got.map(g => g.length)
  await waitFor(
    () => {
      if (crashed) throw new CheckFailed(`${currentStep}: ${what}: consumer crashed: ${crashed.stack || crashed}`)
      return have().every((n, p) => n >= counts[p])
    },
    WAIT,
    `${what}: ${JSON.stringify(counts)} records`,
    () => `(have ${JSON.stringify(have())})`
  )
  return { consumer, got }
}

async function main() {
  const [bootstrap, prefix] = process.argv.slice(2)
  if (!bootstrap || prefix === undefined) {
    console.error('usage: node scenario.js BOOTSTRAP TOPIC_PREFIX')
    process.exit(2)
  }
  const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`
  const inTopic = `${prefix}kjstxn-in-${run}`
  const outTopic = `${prefix}kjstxn-out-${run}`
  const fenceTopic = `${prefix}kjstxn-fence-${run}`
  const groupId = `${prefix}kjstxn-ctp-${run}`
  console.log(`kafkajs ${KAFKAJS_VERSION} bootstrap=${bootstrap} topics=${inTopic},${outTopic}`)

  const kafka = new Kafka({
    clientId: 'gregor-matrix-kafkajs-txn',
    brokers: [bootstrap],
    logLevel: LOG_LEVEL,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 5 },
  })
  const admin = kafka.admin()
  const closers = []
  try {
    step('create-topics')
    await admin.connect()
    closers.push(() => admin.disconnect())
    const created = await admin.createTopics({
      topics: [
        ...[inTopic, outTopic].map(topic => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })),
        { topic: fenceTopic, numPartitions: 1, replicationFactor: 1 },
      ],
      waitForLeaders: true,
      timeout: 30000,
    })
    check(created === true, `createTopics returned ${created}, expected true (new topics)`)

    step('transactions')
    const producer = kafka.producer({
      transactionalId: `${prefix}kjstxn-${run}`,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      transactionTimeout: 30000,
    })
    closers.push(() => producer.disconnect())
    await producer.connect()
    const committed = Array.from({ length: PARTITIONS }, () => []) // [{ offset, value }]
    const everything = Array.from({ length: PARTITIONS }, () => [])
    for (const [t, outcome] of OUTCOMES.entries()) {
      const txn = await producer.transaction()
      const messages = []
      for (let i = 0; i < PER_PART; i++) {
        for (let p = 0; p < PARTITIONS; p++) {
          messages.push({ partition: p, key: `k${p}`, value: `t${t}-${outcome}-p${p}-${i}` })
        }
      }
      let meta
      try {
        meta = await txn.send({ topic: inTopic, acks: -1, messages })
      } catch (e) {
        await txn.abort().catch(() => {})
        throw new CheckFailed(`${currentStep}: transaction ${t}: send failed: ${e.stack || e}`)
      }
      for (let p = 0; p < PARTITIONS; p++) {
        const rm = meta.find(m => m.partition === p)
        check(rm && rm.errorCode === 0, `transaction ${t}: partition ${p} ack ${JSON.stringify(rm)}`)
        check(
          String(rm.baseOffset) === String(t * SPAN),
          `transaction ${t}: partition ${p} baseOffset ${rm.baseOffset}, expected ${t * SPAN}`
        )
        for (let i = 0; i < PER_PART; i++) {
          const rec = { offset: t * SPAN + i, value: `t${t}-${outcome}-p${p}-${i}` }
          everything[p].push(rec)
          if (outcome === 'commit') committed[p].push(rec)
        }
      }
      if (outcome === 'commit') await txn.commit()
      else await txn.abort()
      check(!txn.isActive(), `transaction ${t} still active after ${outcome}`)
      console.log(`  transaction ${t}: ${messages.length} records, ${outcome}`)
    }

    step('high-watermarks')
    const end = OUTCOMES.length * SPAN
    const offs = await admin.fetchTopicOffsets(inTopic)
    for (const o of offs) {
      check(
        String(o.low) === '0' && String(o.high) === String(end),
        `partition ${o.partition}: low ${o.low} high ${o.high}, expected 0 and ${end} (records and control records)`
      )
    }

    step('consume-transform-produce')
    const counts = committed.map(c => c.length)
    const { consumer: ctp, got: input } = await readGroup(kafka, closers, {
      topic: inTopic,
      groupId,
      readUncommitted: false,
      counts,
      what: 'readUncommitted false on the input',
    })
    for (let p = 0; p < PARTITIONS; p++) {
      check(
        same(input[p], committed[p]),
        `partition ${p}: read ${JSON.stringify(input[p])}, expected exactly the committed ${JSON.stringify(committed[p])}`
      )
    }
    console.log(`  read exactly the ${counts.reduce((a, b) => a + b)} committed records`)
    const next = input.map(g => g[g.length - 1].offset + 1)
    const offsetsToCommit = {
      consumerGroupId: groupId,
      topics: [{ topic: inTopic, partitions: next.map((offset, partition) => ({ partition, offset: String(offset) })) }],
    }
    const transformed = input.map(g => g.map(r => `out:${r.value}`))
    const outMessages = tag =>
      transformed.flatMap((vals, partition) => vals.map(v => ({ partition, value: `${tag}${v}` })))
    const groupOffsets = async () => {
      const res = await admin.fetchOffsets({ groupId, topics: [inTopic] })
      check(res.length === 1 && res[0].topic === inTopic, `fetchOffsets answered ${JSON.stringify(res)}`)
      return res[0].partitions
        .slice()
        .sort((a, b) => a.partition - b.partition)
        .map(x => Number(x.offset))
    }

    // the first attempt fails: its output and its offsets are aborted
    let txn = await producer.transaction()
    await txn.send({ topic: outTopic, acks: -1, messages: outMessages('aborted-') })
    await txn.sendOffsets(offsetsToCommit)
    await txn.abort()
    const afterAbort = await groupOffsets()
    check(
      same(afterAbort, [-1, -1, -1]),
      `group offsets after the aborted transaction ${JSON.stringify(afterAbort)}, expected none (-1)`
    )
    // the second attempt commits
    txn = await producer.transaction()
    await txn.send({ topic: outTopic, acks: -1, messages: outMessages('') })
    await txn.sendOffsets(offsetsToCommit)
    await txn.commit()
    // Kafka answers EndTxn before its markers reach the group coordinator,
    // which applies the offsets only then (KIP-447): an OffsetFetch right
    // after the commit may still see none. Wait, as a client must.
    let afterCommit = await groupOffsets()
    for (const until = Date.now() + 10000; !same(afterCommit, next) && Date.now() < until; ) {
      await new Promise(resolve => setTimeout(resolve, 100))
      afterCommit = await groupOffsets()
    }
    check(
      same(afterCommit, next),
      `group offsets after the committed transaction ${JSON.stringify(afterCommit)}, expected ${JSON.stringify(next)}`
    )
    console.log(`  group ${groupId} committed ${JSON.stringify(afterCommit)} through sendOffsets`)
    await ctp.disconnect()

    step('read-committed-output')
    const { consumer: outC, got: out } = await readGroup(kafka, closers, {
      topic: outTopic,
      groupId: `${groupId}-verify`,
      readUncommitted: false,
      counts,
      what: 'readUncommitted false on the output',
    })
    for (let p = 0; p < PARTITIONS; p++) {
      // aborted batch first, its control record, then the committed batch
      const want = transformed[p].map((value, i) => ({ offset: counts[p] + 1 + i, value }))
      check(
        same(out[p], want),
        `partition ${p}: read ${JSON.stringify(out[p])}, expected exactly the committed output ${JSON.stringify(want)}`
      )
    }
    await outC.disconnect()

    step('read-uncommitted-input')
    const { consumer: allC, got: all } = await readGroup(kafka, closers, {
      topic: inTopic,
      groupId: `${groupId}-uncommitted`,
      readUncommitted: true,
      counts: everything.map(e => e.length),
      what: 'readUncommitted true on the input',
    })
    for (let p = 0; p < PARTITIONS; p++) {
      check(
        same(all[p], everything[p]),
        `partition ${p}: read ${JSON.stringify(all[p])}, expected every record ${JSON.stringify(everything[p])}`
      )
    }
    await allC.disconnect()
    console.log('  readUncommitted true sees the aborted records too')

    step('fencing')
    const fencingId = `${prefix}kjstxn-fencing-${run}`
    const txnProducer = () => {
      const p = kafka.producer({ transactionalId: fencingId, idempotent: true, maxInFlightRequests: 1 })
      closers.push(() => p.disconnect())
      return p
    }
    const zombie = txnProducer()
    await zombie.connect()
    const zTxn = await zombie.transaction()
    await zTxn.send({
      topic: fenceTopic,
      acks: -1,
      messages: [0, 1, 2].map(i => ({ partition: 0, value: `zombie-${i}` })),
    })
    // kafkajs sends the transactional InitProducerId with the first
    // transaction(): it aborts the open transaction (kafkajs retries
    // CONCURRENT_TRANSACTIONS meanwhile) and bumps the epoch
    const live = txnProducer()
    await live.connect()
    const lTxn = await live.transaction()
    let fenced = null
    try {
      await zTxn.commit()
    } catch (e) {
      fenced = e
    }
    check(fenced !== null, 'the fenced producer committed its transaction')
    const fencedType = fenced.type || (fenced.cause && fenced.cause.type)
    console.log(`  the fenced producer's commit failed: ${fenced.name} ${fencedType}: ${fenced.message}`)
    check(
      fencedType === 'INVALID_PRODUCER_EPOCH',
      `the fenced producer's commit failed with ${fenced.name} ${fencedType} (${fenced.message}), expected INVALID_PRODUCER_EPOCH`
    )
    await lTxn.send({ topic: fenceTopic, acks: -1, messages: [0, 1].map(i => ({ partition: 0, value: `live-${i}` })) })
    await lTxn.commit()
    const { consumer: fenceC, got: fenceGot } = await readGroup(kafka, closers, {
      topic: fenceTopic,
      groupId: `${groupId}-fence`,
      readUncommitted: false,
      counts: [2],
      what: 'readUncommitted false after fencing',
      partitions: 1,
    })
    // zombie records at 0..2, the abort marker at 3, then the live ones
    const wantLive = [
      { offset: 4, value: 'live-0' },
      { offset: 5, value: 'live-1' },
    ]
    check(
      same(fenceGot[0], wantLive),
      `read ${JSON.stringify(fenceGot[0])}, expected only the live producer's ${JSON.stringify(wantLive)}`
    )
    await fenceC.disconnect()
  } finally {
    for (const c of closers.reverse()) {
      await c().catch(() => {})
    }
  }
}

main().then(
  () => {
    // Printed after every client is closed, so that it is the last line.
    console.log(`RESULT kafkajs-txn ${KAFKAJS_VERSION} ok`)
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
