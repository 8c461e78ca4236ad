'use strict'
// Consumer-group scenario for kafkajs (see ../README.md for the contract).
//
//   node scenario.js BOOTSTRAP TOPIC_PREFIX
//
// Written the way a kafkajs user would: every member is its own Kafka
// instance (its own client id) and consumer.run() with autoCommit: false,
// committing synchronously with consumer.commitOffsets() (eachMessage in
// group A, eachBatch in group B); admin.describeGroups / listGroups /
// fetchOffsets / fetchTopicOffsets / setOffsets / deleteGroups.
//
//  1. a 6-partition topic, 600 keyed records;
//  2. three members of group A (default assignor, RoundRobinAssigner): once
//     stable each owns exactly two partitions, laid out round-robin over the
//     sorted member ids; every record consumed exactly once; committed
//     offsets = end offsets; a second wave produced while stable is
//     consumed by each partition's owner only, without a rebalance;
//  3. the group leader disconnects (LeaveGroup): the two others take over
//     all six partitions (time printed, must beat the session timeout);
//     then a member's record handler hangs (kafkajs heartbeats between
//     records): the coordinator expels it when its session times out, the
//     other member takes over and consumes the record; the stuck member's
//     late commit is refused (UNKNOWN_MEMBER_ID), kafkajs crashes it for
//     good, and a new member in its place rejoins;
//  4. five more members: seven members on six partitions, exactly one idle
//     (the last in member-id order); DeleteGroups on the live group fails
//     with NON_EMPTY_GROUP; then everybody leaves and the group is Empty;
//  5. assignors, group B: a custom partition assigner (GregorRange, the
//     documented custom-assigner API) preferred by two members and
//     RoundRobinAssigner by the third: the broker's vote picks GregorRange
//     and hands the leader every member's GregorRange metadata; a fourth
//     member supporting only RoundRobinAssigner switches the whole group to
//     it; a fifth supporting neither is refused (INCONSISTENT_GROUP_PROTOCOL);
//  6. static membership: kafkajs 2.2.4 has no group.instance.id (its
//     JoinGroup never sends one), so this is reported and skipped;
//  7. at every stable point describeGroups and listGroups agree with the
//     members (state Stable, protocol type consumer, protocol, member ids,
//     client ids, client host, subscription metadata, assignments); at the
//     end: Empty groups, admin.setOffsets on an empty group, deleteGroups,
//     and fetchOffsets of a deleted group.
//
// Exits 0 and prints `RESULT kafkajs-groups <version> ok` only if every
// check passed. KAFKAJS_LOG=error|warn|info|debug turns kafkajs' own log on.

const path = require('path')
const { EventEmitter } = require('events')

// The kafkajs install of the sibling scenario (../kafkajs, same pin).
const KAFKAJS_DIR = path.join(__dirname, '..', 'kafkajs', 'node_modules', 'kafkajs')
const { Kafka, logLevel, Partitioners, AssignerProtocol, PartitionAssigners } = require(KAFKAJS_DIR)
const KAFKAJS_VERSION = require(path.join(KAFKAJS_DIR, 'package.json')).version
const { MemberMetadata, MemberAssignment } = AssignerProtocol

const PARTITIONS = 6
const FIRST_WAVE = 600
const KEYS = 60
const SESSION_TIMEOUT = 10000 // >= Kafka's group.min.session.timeout.ms (6 s)
const REBALANCE_TIMEOUT = 10000
const HEARTBEAT_INTERVAL = 500
const WAIT = 30000 // any single awaited condition
// kafkajs logs every REBALANCE_IN_PROGRESS heartbeat answer as an error;
// quiet unless KAFKAJS_LOG=debug|info|warn (crashes are reported as checks).
const LOG_LEVEL = { error: logLevel.ERROR, debug: logLevel.DEBUG, info: logLevel.INFO, warn: logLevel.WARN }[process.env.KAFKAJS_LOG] || logLevel.NOTHING

const started = Date.now()
class CheckFailed extends Error {}
let currentStep = 'setup'
function check(cond, what) {
  if (!cond) throw new CheckFailed(`${currentStep}: ${what}`)
}
function secs(ms) {
  return (ms / 1000).toFixed(2)
}
function step(name) {
  currentStep = name
  console.log(`STEP [${secs(Date.now() - started)}s] ${name}`)
}
function info(msg) {
  console.log(`  ${msg}`)
}
const sortNum = a => a.slice().sort((x, y) => x - y)
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)

// Every client event bumps `changes`; waitFor re-evaluates on each bump (and
// every 100 ms, for conditions on time).
const changes = new EventEmitter()
changes.setMaxListeners(0)
const bump = () => changes.emit('change')
function waitFor(pred, ms, what, detail = () => '') {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + ms
    let timer
    const done = (f, v) => {
      clearInterval(timer)
      changes.off('change', test)
      f(v)
    }
    function test() {
      let v
      try {
        v = pred()
      } catch (e) {
        return done(reject, e)
      }
      if (v) return done(resolve, v)
      if (Date.now() > deadline) {
        done(reject, new CheckFailed(`${currentStep}: timed out after ${ms} ms waiting for ${what} ${detail()}`))
      }
    }
    changes.on('change', test)
    timer = setInterval(test, 100)
    test()
  })
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
const pause = ms => new Promise(resolve => setTimeout(resolve, ms))

// A custom partition assigner through kafkajs' documented assigner API:
// contiguous ranges over the members sorted by id. Its subscription
// metadata carries userData, so the leader can tell that the broker handed
// it this protocol's metadata (and not RoundRobinAssigner's).
const RANGE_USERDATA = 'gregor-range-v1'
const seenByRangeLeader = [] // [{ memberId, topics, userData }] of the last assign()
const GregorRangeAssigner = ({ cluster }) => ({
  name: 'GregorRange',
  version: 1,
  async assign({ members, topics }) {
    seenByRangeLeader.length = 0
    for (const m of members) {
      const md = MemberMetadata.decode(m.memberMetadata)
      seenByRangeLeader.push({ memberId: m.memberId, topics: md.topics, userData: String(md.userData) })
    }
    const sorted = members.map(m => m.memberId).sort()
    const out = {}
    for (const id of sorted) out[id] = {}
    for (const topic of topics) {
      const parts = sortNum(cluster.findTopicPartitionMetadata(topic).map(m => m.partitionId))
      const per = Math.floor(parts.length / sorted.length)
      const extra = parts.length % sorted.length
      let next = 0
      sorted.forEach((id, i) => {
        const n = per + (i < extra ? 1 : 0)
        out[id][topic] = parts.slice(next, next + n)
        next += n
      })
    }
    return sorted.map(memberId => ({
      memberId,
      memberAssignment: MemberAssignment.encode({ version: this.version, assignment: out[memberId] }),
    }))
  },
  protocol({ topics }) {
    return {
      name: this.name,
      metadata: MemberMetadata.encode({ version: this.version, topics, userData: Buffer.from(RANGE_USERDATA) }),
    }
  },
})
// Expected layouts over the member ids of one generation.
function roundRobinLayout(memberIds) {
  const sorted = memberIds.slice().sort()
  const out = Object.fromEntries(sorted.map(id => [id, []]))
  for (let p = 0; p < PARTITIONS; p++) out[sorted[p % sorted.length]].push(p)
  return out
}
function rangeLayout(memberIds) {
  const sorted = memberIds.slice().sort()
  const out = {}
  const per = Math.floor(PARTITIONS / sorted.length)
  const extra = PARTITIONS % sorted.length
  let next = 0
  sorted.forEach((id, i) => {
    const n = per + (i < extra ? 1 : 0)
    out[id] = [...Array(n).keys()].map(k => next + k)
    next += n
  })
  return out
}

// What one group has consumed: (partition, offset) -> record, counted only
// once its offset commit succeeded (an uncommitted delivery is redelivered
// to the partition's next owner; that is not a duplicate).
class Ledger {
  constructor(name) {
    this.name = name
    this.byPos = new Map()
    this.violations = []
    this.redeliveries = 0
  }
  add(member, partition, message) {
    const pos = `${partition}:${message.offset}`
    const rec = { member: member.name, partition, offset: Number(message.offset), key: String(message.key), value: String(message.value) }
    const prev = this.byPos.get(pos)
    if (prev) {
      this.violations.push(`${this.name}: ${pos} (${rec.value}) consumed and committed twice: by ${prev.member} and ${member.name}`)
    } else {
      this.byPos.set(pos, rec)
    }
    bump()
  }
  get size() {
    return this.byPos.size
  }
  records() {
    return [...this.byPos.values()]
  }
}

class Member {
  constructor(ctx, name, opts = {}) {
    this.ctx = ctx
    this.name = name
    this.groupId = opts.groupId
    this.ledger = opts.ledger
    this.assigners = opts.assigners // undefined: kafkajs' default
    this.mode = opts.mode || 'message'
    this.restart = opts.restart !== false
    this.joins = [] // GROUP_JOIN events
    this.rebalances = 0 // REBALANCING events
    this.crashes = [] // CRASH events
    this.committed = new Map() // partition -> last committed offset (COMMIT_OFFSETS events)
    this.consumedHere = [] // records this member committed
    this.commitErrors = [] // commitOffsets failures (error types)
    this.stall = null // { partition, release, stalled }: hold eachMessage
    this.stopped = false
  }
  get lastJoin() {
    return this.joins[this.joins.length - 1]
  }
  get memberId() {
    return this.lastJoin && this.lastJoin.memberId
  }
  async start() {
    const { bootstrap, topic } = this.ctx
    this.kafka = new Kafka({
      clientId: this.name,
      brokers: [bootstrap],
      logLevel: LOG_LEVEL,
      connectionTimeout: 5000,
      requestTimeout: 30000,
      retry: { retries: 5, initialRetryTime: 100 },
    })
    const cfg = {
      groupId: this.groupId,
      sessionTimeout: SESSION_TIMEOUT,
      rebalanceTimeout: REBALANCE_TIMEOUT,
      heartbeatInterval: HEARTBEAT_INTERVAL,
      maxWaitTimeInMs: 250,
      retry: { retries: 8, initialRetryTime: 100, restartOnFailure: async () => this.restart },
    }
    if (this.assigners) cfg.partitionAssigners = this.assigners
    this.consumer = this.kafka.consumer(cfg)
    const ev = this.consumer.events
    this.consumer.on(ev.GROUP_JOIN, ({ payload }) => {
      this.joins.push({
        at: Date.now(),
        memberId: payload.memberId,
        leaderId: payload.leaderId,
        isLeader: payload.isLeader,
        protocol: payload.groupProtocol,
        partitions: sortNum(payload.memberAssignment[topic] || []),
      })
      bump()
    })
    this.consumer.on(ev.REBALANCING, () => {
      this.rebalances++
      bump()
    })
    this.consumer.on(ev.CRASH, ({ payload }) => {
      this.crashes.push(payload.error)
      this.crashRestart = payload.restart
      bump()
    })
    this.consumer.on(ev.COMMIT_OFFSETS, ({ payload }) => {
      for (const t of payload.topics) {
        for (const p of t.partitions) this.committed.set(Number(p.partition), String(p.offset))
      }
    })
    await this.consumer.connect()
    await this.consumer.subscribe({ topics: [topic], fromBeginning: true })
    const commit = async (partition, nextOffset) => {
      try {
        await this.consumer.commitOffsets([{ topic, partition, offset: nextOffset }])
      } catch (e) {
        this.commitErrors.push((e.cause && e.cause.type) || e.type || e.name)
        bump()
        throw e
      }
      // commitOffsets returns quietly without committing once the consumer
      // is stopping: count only what the coordinator acknowledged.
      return this.committed.get(partition) === nextOffset
    }
    const run = { autoCommit: false }
    if (this.mode === 'message') {
      run.eachMessage = async ({ partition, message }) => {
        const next = String(BigInt(message.offset) + 1n)
        const stall = this.stall
        if (stall && stall.partition === partition) {
          // A stuck record handler: no heartbeat until released.
          this.stall = null
          stall.stalled = true
          bump()
          await stall.released
        }
        if (await commit(partition, next)) this.record(partition, message)
        else this.ledger.redeliveries++
      }
    } else {
      run.eachBatchAutoResolve = false
      run.eachBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (batch.isEmpty() || !isRunning() || isStale()) return
        const last = batch.lastOffset()
        const next = String(BigInt(last) + 1n)
        if (await commit(batch.partition, next)) {
          for (const m of batch.messages) this.record(batch.partition, m)
          resolveOffset(last)
        } else {
          this.ledger.redeliveries += batch.messages.length
        }
        await heartbeat()
      }
    }
    await this.consumer.run(run)
  }
  record(partition, message) {
    this.consumedHere.push({ partition, offset: Number(message.offset) })
    this.ledger.add(this, partition, message)
  }
  async stop() {
    if (this.stopped || !this.consumer) return
    this.stopped = true
    await this.consumer.disconnect()
  }
}

async function main() {
  const [bootstrap, prefix] = process.argv.slice(2)
  if (!bootstrap || prefix === undefined) {
    console.error('usage: node scenario.js BOOTSTRAP TOPIC_PREFIX')
    process.exit(2)
  }
  const run = Date.now().toString(36)
  const topic = `${prefix}kafkajs-groups-${run}`
  const ctx = { bootstrap, topic }
  console.log(`kafkajs ${KAFKAJS_VERSION} bootstrap=${bootstrap} topic=${topic}`)

  const kafka = new Kafka({
    clientId: 'gregor-matrix-kafkajs-groups-admin',
    brokers: [bootstrap],
    logLevel: LOG_LEVEL,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 5, initialRetryTime: 100 },
  })
  const admin = kafka.admin()
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
  const members = []
  const closers = []
  let produced = 0
  const producedValues = new Set()

  async function produceWave(wave, n) {
    const messages = []
    for (let i = 0; i < n; i++) {
      const value = `w${wave}-${String(produced + i).padStart(5, '0')}`
      messages.push({ key: `key-${String((produced + i) % KEYS).padStart(2, '0')}`, value })
      producedValues.add(value)
    }
    produced += n
    await producer.send({ topic, acks: -1, timeout: 30000, messages })
  }
  async function produceTo(wave, partition, n) {
    const messages = []
    for (let i = 0; i < n; i++) {
      const value = `w${wave}-${String(produced + i).padStart(5, '0')}`
      messages.push({ key: `key-${String((produced + i) % KEYS).padStart(2, '0')}`, value, partition })
      producedValues.add(value)
    }
    produced += n
    await producer.send({ topic, acks: -1, timeout: 30000, messages })
  }
  async function endOffsets() {
    const offs = await admin.fetchTopicOffsets(topic)
    check(offs.length === PARTITIONS, `fetchTopicOffsets gave ${offs.length} partitions`)
    const out = []
    for (const o of offs) out[o.partition] = Number(o.high)
    return out
  }
  async function committedOffsets(groupId) {
    const res = await admin.fetchOffsets({ groupId, topics: [topic] })
    check(res.length === 1 && res[0].topic === topic, `fetchOffsets answered ${JSON.stringify(res)}`)
    const out = []
    for (const p of res[0].partitions) out[p.partition] = Number(p.offset)
    return out
  }
  // Every produced record consumed (and committed) exactly once by the
  // group, per-key order kept, committed offsets = end offsets.
  async function checkExactlyOnce(ledger, groupId) {
    await waitFor(
      () => ledger.size >= produced || ledger.violations.length,
      WAIT,
      `${ledger.name} to consume ${produced} records`,
      () => `(has ${ledger.size})`
    )
    check(ledger.violations.length === 0, ledger.violations.join('; '))
    check(ledger.size === produced, `${ledger.name} consumed ${ledger.size} distinct records, produced ${produced}`)
    const values = new Set(ledger.records().map(r => r.value))
    check(values.size === produced, `${ledger.name}: ${produced - values.size} values consumed at two offsets`)
    for (const v of producedValues) check(values.has(v), `${ledger.name}: record ${v} never consumed`)
    const byPart = Array.from({ length: PARTITIONS }, () => [])
    for (const r of ledger.records()) byPart[r.partition].push(r)
    const ends = await endOffsets()
    for (let p = 0; p < PARTITIONS; p++) {
      const rs = byPart[p].sort((a, b) => a.offset - b.offset)
      check(rs.length === ends[p], `${ledger.name}: partition ${p}: ${rs.length} records consumed, end offset ${ends[p]}`)
      rs.forEach((r, i) => check(r.offset === i, `${ledger.name}: partition ${p}: offsets not contiguous at ${i}`))
      const lastByKey = new Map()
      for (const r of rs) {
        check(!(lastByKey.get(r.key) > r.value.split('-')[1]), `${ledger.name}: key ${r.key} out of order at ${p}/${r.offset}`)
        lastByKey.set(r.key, r.value.split('-')[1])
      }
    }
    const committed = await committedOffsets(groupId)
    check(same(committed, ends), `${groupId}: committed offsets ${JSON.stringify(committed)} != end offsets ${JSON.stringify(ends)}`)
    return ends
  }

  // describeGroups, polled until it agrees with what the members last got
  // from JoinGroup/SyncGroup: Stable, protocol type consumer, the protocol,
  // exactly these member ids with their client ids and assignments, the
  // assignments a partition of all six partitions. Returns the description.
  async function awaitStable(groupId, group, protocol, what) {
    const deadline = Date.now() + WAIT
    let why = ''
    for (;;) {
      why = await mismatch()
      if (!why) break
      if (Date.now() > deadline) throw new CheckFailed(`${currentStep}: ${what}: not stable after ${WAIT} ms: ${why}`)
      await Promise.race([new Promise(r => changes.once('change', r)), pause(200)])
    }
    async function mismatch() {
      if (group.some(m => !m.lastJoin)) return `members not joined: ${group.filter(m => !m.lastJoin).map(m => m.name)}`
      const { groups } = await admin.describeGroups([groupId])
      const d = groups[0]
      if (!d || d.errorCode !== 0) return `describeGroups: ${JSON.stringify(d)}`
      if (d.state !== 'Stable') return `state ${d.state}`
      if (d.protocolType !== 'consumer') return `protocolType ${d.protocolType}`
      if (d.protocol !== protocol) return `protocol ${d.protocol}, expected ${protocol}`
      if (d.members.length !== group.length) return `${d.members.length} members described, ${group.length} running`
      const owner = new Map()
      for (const dm of d.members) {
        const m = group.find(x => x.memberId === dm.memberId)
        if (!m) return `described member ${dm.memberId} (${dm.clientId}) is none of ours`
        if (dm.clientId !== m.name) return `member ${dm.memberId}: clientId ${dm.clientId}, expected ${m.name}`
        const a = dm.memberAssignment.length ? MemberAssignment.decode(dm.memberAssignment) : null
        const parts = sortNum((a && a.assignment[topic]) || [])
        if (!same(parts, m.lastJoin.partitions)) {
          return `${m.name}: described assignment ${JSON.stringify(parts)}, member got ${JSON.stringify(m.lastJoin.partitions)}`
        }
        if (m.lastJoin.protocol !== protocol) return `${m.name} joined with protocol ${m.lastJoin.protocol}`
        for (const p of parts) {
          if (owner.has(p)) return `partition ${p} assigned to ${owner.get(p)} and ${m.name}`
          owner.set(p, m.name)
        }
      }
      if (owner.size !== PARTITIONS) return `only partitions ${sortNum([...owner.keys()])} assigned`
      const leaders = new Set(group.map(m => m.lastJoin.leaderId))
      if (leaders.size !== 1 || !group.some(m => m.memberId === [...leaders][0])) {
        return `members disagree on the leader: ${JSON.stringify([...leaders])}`
      }
      return ''
    }
    // The rest of what DescribeGroups says about each member.
    const { groups } = await admin.describeGroups([groupId])
    const d = groups[0]
    for (const dm of d.members) {
      check(/127\.0\.0\.1/.test(dm.clientHost), `${groupId}: member ${dm.clientId} clientHost ${JSON.stringify(dm.clientHost)}`)
      const md = MemberMetadata.decode(dm.memberMetadata)
      check(same(md.topics, [topic]), `${groupId}: member ${dm.clientId} subscription ${JSON.stringify(md.topics)}`)
    }
    const { groups: listed } = await admin.listGroups()
    const l = listed.find(g => g.groupId === groupId)
    check(l, `listGroups does not list ${groupId}: ${JSON.stringify(listed)}`)
    check(l.protocolType === 'consumer', `listGroups: ${groupId} protocolType ${l.protocolType}`)
    const layout = group
      .slice()
      .sort((a, b) => (a.memberId < b.memberId ? -1 : 1))
      .map(m => `${m.name}=${JSON.stringify(m.lastJoin.partitions)}`)
    info(`${what}: Stable, ${d.members.length} members, ${protocol}: ${layout.join(' ')}`)
    return d
  }
  function checkLayout(group, expected, name) {
    for (const m of group) {
      check(
        same(m.lastJoin.partitions, expected[m.memberId]),
        `${name}: ${m.name} owns ${JSON.stringify(m.lastJoin.partitions)}, the assignor gives it ${JSON.stringify(expected[m.memberId])}`
      )
    }
  }
  // No rebalance while a wave is consumed, and each record is consumed by
  // its partition's owner.
  function snapshot(group) {
    return group.map(m => ({ m, joins: m.joins.length, rebalances: m.rebalances, consumed: m.consumedHere.length }))
  }
  function checkOwnersConsumed(snap, name) {
    for (const { m, joins, rebalances, consumed } of snap) {
      check(m.joins.length === joins && m.rebalances === rebalances, `${name}: ${m.name} rebalanced while the group was stable`)
      for (const r of m.consumedHere.slice(consumed)) {
        check(m.lastJoin.partitions.includes(r.partition), `${name}: ${m.name} consumed partition ${r.partition} it does not own`)
      }
    }
  }
  const startAll = (group, what) =>
    withTimeout(Promise.all(group.map(m => m.start())), WAIT, `starting ${what}`)

  try {
    // 1. Topic and records.
    step('1 create topic, produce')
    await admin.connect()
    closers.push(() => admin.disconnect())
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
      waitForLeaders: true,
      timeout: 30000,
    })
    check(created === true, `createTopics returned ${created}`)
    await producer.connect()
    closers.push(() => producer.disconnect())
    await produceWave(1, FIRST_WAVE)
    const ends1 = await endOffsets()
    check(ends1.reduce((a, b) => a + b, 0) === FIRST_WAVE, `end offsets ${JSON.stringify(ends1)} do not add up to ${FIRST_WAVE}`)
    check(ends1.every(n => n > 0), `a partition got no records: ${JSON.stringify(ends1)}`)
    info(`${FIRST_WAVE} records, end offsets ${JSON.stringify(ends1)}`)

    // 2. Three members, eachMessage, synchronous commits.
    step('2 three members of group A (eachMessage, commitOffsets)')
    const groupA = `${prefix}kafkajs-groups-A-${run}`
    const ledgerA = new Ledger('group A')
    const aOpts = { groupId: groupA, ledger: ledgerA }
    const a = [1, 2, 3].map(i => new Member(ctx, `kjs-a${i}`, aOpts))
    members.push(...a)
    let t0 = Date.now()
    await startAll(a, 'three members')
    await checkExactlyOnce(ledgerA, groupA)
    info(`all ${produced} records consumed once and committed in ${Date.now() - t0} ms (redeliveries after a failed commit: ${ledgerA.redeliveries})`)
    await awaitStable(groupA, a, 'RoundRobinAssigner', 'three members')
    for (const m of a) check(m.lastJoin.partitions.length === 2, `${m.name} owns ${JSON.stringify(m.lastJoin.partitions)}, expected 2 partitions`)
    checkLayout(a, roundRobinLayout(a.map(m => m.memberId)), 'RoundRobinAssigner (kafkajs default)')
    let snap = snapshot(a)
    await produceWave(2, 120)
    await checkExactlyOnce(ledgerA, groupA)
    checkOwnersConsumed(snap, 'second wave')
    info('second wave (120) consumed once, each record by its partition\'s owner, no rebalance')

    // 3. The leader leaves cleanly.
    step('3 the group leader disconnects')
    const leaving = a.find(m => m.lastJoin.isLeader)
    check(leaving, `no member of group A is the leader: ${JSON.stringify(a.map(m => m.lastJoin))}`)
    const stay = a.filter(m => m !== leaving)
    const joinsBefore = stay.map(m => m.joins.length)
    t0 = Date.now()
    await withTimeout(leaving.stop(), WAIT, `disconnecting ${leaving.name}`)
    const tLeft = Date.now() - t0
    await waitFor(
      () =>
        stay.every((m, i) => m.joins.length > joinsBefore[i]) &&
        new Set(stay.flatMap(m => m.lastJoin.partitions)).size === PARTITIONS,
      WAIT,
      'the two others to take over all partitions',
      () => JSON.stringify(stay.map(m => m.lastJoin.partitions))
    )
    const tTakeover = Date.now() - t0
    info(`${leaving.name} (leader) left in ${tLeft} ms; ${stay.map(m => m.name).join(', ')} own all partitions ${tTakeover} ms after disconnect()`)
    check(tTakeover < SESSION_TIMEOUT / 2, `takeover took ${tTakeover} ms: LeaveGroup not acted upon (session timeout ${SESSION_TIMEOUT} ms)`)
    const d3 = await awaitStable(groupA, stay, 'RoundRobinAssigner', 'after the leader left')
    check(!d3.members.some(dm => dm.memberId === leaving.lastJoin.memberId), `${leaving.name} is still described`)
    check(stay.some(m => m.lastJoin.isLeader), 'no new leader among the remaining members')
    checkLayout(stay, roundRobinLayout(stay.map(m => m.memberId)), 'RoundRobinAssigner, two members')
    snap = snapshot(stay)
    await produceWave(3, 60)
    await checkExactlyOnce(ledgerA, groupA)
    checkOwnersConsumed(snap, 'third wave')
    info('third wave (60) consumed once by the new owners, committed = end')

    // 3b. A member whose record handler hangs stops heartbeating (kafkajs
    // heartbeats between records): the coordinator expels it when its
    // session times out, the other takes over, and the stuck member's
    // commit, once it wakes up, is refused; it rejoins.
    step('3b a stuck member is expelled, its late commit refused')
    const [stuck, peer] = stay
    const stuckPart = stuck.lastJoin.partitions[0]
    let release
    stuck.stall = { partition: stuckPart, released: new Promise(r => (release = r)), stalled: false }
    const stall = stuck.stall
    const peerJoins = peer.joins.length
    const stuckOffset = (await endOffsets())[stuckPart]
    await produceTo(3, stuckPart, 1)
    await waitFor(() => stall.stalled, WAIT, `${stuck.name} to start handling the record of partition ${stuckPart}`)
    t0 = Date.now()
    await waitFor(
      () => peer.joins.length > peerJoins && peer.lastJoin.partitions.length === PARTITIONS,
      SESSION_TIMEOUT + WAIT,
      `${peer.name} to take over after ${stuck.name}'s session expired`,
      () => JSON.stringify(peer.lastJoin.partitions)
    )
    const tExpel = Date.now() - t0
    check(tExpel >= SESSION_TIMEOUT - 2000, `${stuck.name} was expelled ${tExpel} ms after it stopped heartbeating, before its session (${SESSION_TIMEOUT} ms) expired`)
    await waitFor(() => ledgerA.size >= produced, WAIT, `${peer.name} to consume the record ${stuck.name} is stuck on`)
    const rec = ledgerA.byPos.get(`${stuckPart}:${stuckOffset}`)
    check(rec && rec.member === peer.name, `record ${stuckPart}:${stuckOffset} consumed by ${rec && rec.member}, expected ${peer.name}`)
    info(`${stuck.name} stuck: expelled after ${tExpel} ms (session.timeout ${SESSION_TIMEOUT} ms); ${peer.name} owns all partitions and consumed the record`)
    const errsBefore = stuck.commitErrors.length
    release()
    await waitFor(() => stuck.commitErrors.length > errsBefore, WAIT, `${stuck.name}'s late commit to be refused`)
    const refused = stuck.commitErrors[errsBefore]
    check(['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION'].includes(refused), `${stuck.name}'s late commit failed with ${refused}, expected UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION`)
    // kafkajs gives up on a commit refused this way: the consumer crashes
    // without restarting (a non-retriable error); the application starts a
    // new one.
    await waitFor(() => stuck.crashes.length > 0, WAIT, `${stuck.name} to crash after the refused commit`)
    check(stuck.crashRestart === false, `${stuck.name} crashed with restart=${stuck.crashRestart}`)
    await stuck.stop()
    const revived = new Member(ctx, stuck.name, aOpts)
    members.push(revived)
    stay.splice(stay.indexOf(stuck), 1, revived)
    await startAll([revived], `a new ${stuck.name}`)
    await awaitStable(groupA, stay, 'RoundRobinAssigner', `a new ${stuck.name} joined`)
    await checkExactlyOnce(ledgerA, groupA)
    info(`${stuck.name}'s late commit refused with ${refused} (kafkajs crashed it, no restart); a new ${stuck.name} joined; every record consumed once, committed = end`)

    // 4. Seven members on six partitions.
    step('4 seven members on six partitions')
    const more = [4, 5, 6, 7, 8].map(i => new Member(ctx, `kjs-a${i}`, aOpts))
    members.push(...more)
    const seven = stay.concat(more)
    t0 = Date.now()
    await startAll(more, 'five more members')
    await awaitStable(groupA, seven, 'RoundRobinAssigner', 'seven members')
    info(`seven members stable ${Date.now() - t0} ms after the five started`)
    const idle = seven.filter(m => m.lastJoin.partitions.length === 0)
    check(idle.length === 1, `${idle.length} idle members: ${idle.map(m => m.name)}`)
    check(seven.filter(m => m.lastJoin.partitions.length === 1).length === 6, 'not one partition each for the six others')
    checkLayout(seven, roundRobinLayout(seven.map(m => m.memberId)), 'RoundRobinAssigner, seven members')
    info(`idle: ${idle[0].name} (last in member-id order)`)
    let deleteErr = null
    try {
      await admin.deleteGroups([groupA])
    } catch (e) {
      deleteErr = e
    }
    const delCode = deleteErr && deleteErr.groups && deleteErr.groups[0] && deleteErr.groups[0].error && deleteErr.groups[0].error.type
    check(delCode === 'NON_EMPTY_GROUP', `deleteGroups on a group with members: ${deleteErr ? deleteErr.message + ' ' + delCode : 'succeeded'}, expected NON_EMPTY_GROUP`)
    snap = snapshot(seven)
    await produceWave(4, 70)
    const endsA = await checkExactlyOnce(ledgerA, groupA)
    checkOwnersConsumed(snap, 'fourth wave')
    check(idle[0].consumedHere.length === snap.find(s => s.m === idle[0]).consumed, 'the idle member consumed records')
    info('fourth wave (70) consumed once by the six owners; deleteGroups refused NON_EMPTY_GROUP')
    t0 = Date.now()
    await withTimeout(Promise.all(seven.map(m => m.stop())), WAIT, 'stopping seven members')
    {
      const { groups } = await admin.describeGroups([groupA])
      check(groups[0].state === 'Empty' && groups[0].members.length === 0, `after every member left: state ${groups[0].state}, ${groups[0].members.length} members`)
      check(groups[0].protocolType === 'consumer', `empty group protocolType ${JSON.stringify(groups[0].protocolType)}`)
    }
    info(`all seven left in ${Date.now() - t0} ms; group A is Empty`)

    // 5. Assignors.
    step('5 assignors: custom GregorRange vs RoundRobinAssigner (group B, eachBatch)')
    const groupB = `${prefix}kafkajs-groups-B-${run}`
    const ledgerB = new Ledger('group B')
    const bOpts = { groupId: groupB, ledger: ledgerB, mode: 'batch' }
    const rr = PartitionAssigners.roundRobin
    const b = [
      new Member(ctx, 'kjs-b1', { ...bOpts, assigners: [GregorRangeAssigner, rr] }),
      new Member(ctx, 'kjs-b2', { ...bOpts, assigners: [GregorRangeAssigner, rr] }),
      new Member(ctx, 'kjs-b3', { ...bOpts, assigners: [rr, GregorRangeAssigner] }),
    ]
    members.push(...b)
    await startAll(b, 'group B')
    await checkExactlyOnce(ledgerB, groupB)
    info(`group B consumed all ${produced} records once (eachBatch), committed = end (redeliveries ${ledgerB.redeliveries})`)
    const dB = await awaitStable(groupB, b, 'GregorRange', 'two of three prefer GregorRange')
    checkLayout(b, rangeLayout(b.map(m => m.memberId)), 'GregorRange')
    check(seenByRangeLeader.length === 3, `the GregorRange leader saw ${seenByRangeLeader.length} members`)
    for (const s of seenByRangeLeader) {
      check(s.userData === RANGE_USERDATA, `the leader got member ${s.memberId}'s metadata with userData ${JSON.stringify(s.userData)}: not its GregorRange metadata`)
      check(same(s.topics, [topic]), `the leader got subscription ${JSON.stringify(s.topics)}`)
    }
    for (const dm of dB.members) {
      const ud = String(MemberMetadata.decode(dm.memberMetadata).userData)
      check(ud === RANGE_USERDATA, `describeGroups: ${dm.clientId}'s metadata is not its GregorRange metadata (userData ${JSON.stringify(ud)})`)
    }
    // A member that only knows RoundRobinAssigner: the only common protocol.
    const b4 = new Member(ctx, 'kjs-b4', { ...bOpts, assigners: [rr] })
    members.push(b4)
    const bb = b.concat(b4)
    await startAll([b4], 'a RoundRobin-only member')
    await awaitStable(groupB, bb, 'RoundRobinAssigner', 'a RoundRobin-only member joined')
    checkLayout(bb, roundRobinLayout(bb.map(m => m.memberId)), 'RoundRobinAssigner, four members')
    snap = snapshot(bb)
    await produceWave(5, 60)
    await checkExactlyOnce(ledgerB, groupB)
    checkOwnersConsumed(snap, 'fifth wave')
    // A member with no protocol in common is refused.
    const b5 = new Member(ctx, 'kjs-b5', {
      ...bOpts,
      restart: false,
      assigners: [() => ({ name: 'NoSuchAssigner', version: 0, assign: async () => [], protocol: ({ topics }) => ({ name: 'NoSuchAssigner', metadata: MemberMetadata.encode({ version: 0, topics }) }) })],
    })
    members.push(b5)
    await withTimeout(b5.start(), WAIT, 'starting the member with no common protocol')
    await waitFor(() => b5.crashes.length > 0, WAIT, 'the member with no common protocol to be refused')
    const err = b5.crashes[0]
    check(err.type === 'INCONSISTENT_GROUP_PROTOCOL', `its JoinGroup failed with ${err.type || err.name}: ${err.message}, expected INCONSISTENT_GROUP_PROTOCOL`)
    check(b5.joins.length === 0, 'the member with no common protocol joined')
    await awaitStable(groupB, bb, 'RoundRobinAssigner', 'after the refused join')
    info('a member with no common protocol was refused with INCONSISTENT_GROUP_PROTOCOL; group B unchanged')
    await withTimeout(Promise.all(bb.concat(b5).map(m => m.stop())), WAIT, 'stopping group B')

    // 6. Static membership.
    step('6 static membership')
    info(`SKIP: kafkajs ${KAFKAJS_VERSION} does not support group.instance.id (KIP-345): the consumer has no such option and its JoinGroup always sends a null group instance id`)

    // 7. The groups at rest: offsets, setOffsets, deleteGroups.
    step('7 empty groups: listGroups, setOffsets, deleteGroups')
    const ends = await endOffsets()
    for (const [g, want] of [[groupA, endsA], [groupB, ends]]) {
      const { groups } = await admin.describeGroups([g])
      check(groups[0].state === 'Empty' && groups[0].members.length === 0, `${g}: state ${groups[0].state}, ${groups[0].members.length} members`)
      const got = await committedOffsets(g)
      check(same(got, want), `${g}: committed offsets ${JSON.stringify(got)} after leaving, expected ${JSON.stringify(want)}`)
    }
    const { groups: listed } = await admin.listGroups()
    for (const g of [groupA, groupB]) {
      const l = listed.find(x => x.groupId === g)
      check(l && l.protocolType === 'consumer', `listGroups: ${g} ${JSON.stringify(l)}`)
    }
    // kafkajs' setOffsets: joins the (empty) group, seeks and commits.
    await withTimeout(admin.setOffsets({ groupId: groupB, topic, partitions: [{ partition: 0, offset: '5' }] }), WAIT, 'setOffsets')
    const afterSet = await committedOffsets(groupB)
    check(afterSet[0] === 5, `after setOffsets partition 0 is at ${afterSet[0]}, expected 5`)
    check(same(afterSet.slice(1), ends.slice(1)), `setOffsets moved other partitions: ${JSON.stringify(afterSet)}`)
    const deleted = await admin.deleteGroups([groupA, groupB])
    check(deleted.length === 2 && deleted.every(r => r.errorCode === 0), `deleteGroups: ${JSON.stringify(deleted)}`)
    const { groups: listed2 } = await admin.listGroups()
    check(!listed2.some(x => x.groupId === groupA || x.groupId === groupB), 'deleted groups are still listed')
    const gone = await committedOffsets(groupA)
    check(gone.every(o => o === -1), `offsets of a deleted group: ${JSON.stringify(gone)}, expected -1`)
    const { groups: dead } = await admin.describeGroups([groupA])
    check(dead[0].state === 'Dead' && dead[0].members.length === 0, `describeGroups of a deleted group: state ${dead[0].state}`)
    info('both groups Empty with offsets kept; setOffsets moved partition 0 to 5; deleteGroups removed them (Dead, offsets -1)')
  } finally {
    await Promise.all(members.map(m => withTimeout(m.stop(), 15000, `stopping ${m.name}`).catch(() => {})))
    for (const c of closers.reverse()) {
      await c().catch(() => {})
    }
  }
}

// A last resort: no run outlives this, whatever hangs.
setTimeout(() => {
  console.error(`FAIL ${currentStep}: the scenario did not finish within 180 s`)
  process.exit(1)
}, 180000).unref()

main().then(
  () => {
    // Printed after every client is closed, so that it is the last line.
    console.log(`total ${secs(Date.now() - started)} s`)
    console.log(`RESULT kafkajs-groups ${KAFKAJS_VERSION} ok`)
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
