'use strict'
// Consumer-group scenario for @confluentinc/kafka-javascript (see
// ../README.md), through its node-rdkafka-style API: every member is a
// KafkaConsumer in its own process (member.js: subscribe, rebalance_cb,
// consume, commitSync per record); the AdminClient describes, lists and
// deletes groups and reads committed offsets (listConsumerGroupOffsets)
// and end offsets (listOffsets).
//
//   node scenario.js BOOTSTRAP TOPIC_PREFIX
//
//  1. a 6-partition topic (AdminClient.createTopic), 600 keyed records;
//  2. group A, three members, librdkafka's default assignor (range,
//     EAGER): once stable each owns two contiguous partitions in member-id
//     order; every record consumed exactly once; committed offsets = end
//     offsets; a second wave produced while stable is consumed by each
//     partition's owner only, without a rebalance;
//  3. one member disconnects (close: LeaveGroup): the two others own all
//     six partitions (time printed; must beat the session timeout);
//  4. five more members: seven on six partitions, exactly one idle (the
//     last in member-id order); a member owning a partition is killed
//     (SIGKILL, no LeaveGroup): when its session expires (not before) the
//     six others, the idle one included, own all partitions; then all
//     leave and the group is Empty;
//  5. group C, partition.assignment.strategy=cooperative-sticky: two
//     members (3+3), then a third joins while records keep flowing: the
//     protocol is COOPERATIVE, the old members are only revoked one
//     partition each (incremental, nothing else moves), the newcomer gets
//     exactly those two; every record consumed exactly once;
//  6. group S, static membership (group.instance.id): each of the two
//     members in turn is closed (no LeaveGroup) and restarted with its
//     instance id: it gets its partitions back, the other member sees no
//     rebalance at all (no revoke, no assign), the group stays Stable and
//     its description shows the instance ids and the new member id; a
//     second process with an instance id in use takes the member over
//     (same partitions, no rebalance) and the first one is fenced
//     (FENCED_INSTANCE_ID, a fatal error in librdkafka); closed static
//     members stay in the group until their sessions expire, then it is
//     Empty;
//  7. at every stable point describeGroups and listGroups agree with the
//     members (state Stable, protocol type consumer, protocol, client
//     ids, instance ids, assignments); at the end the groups are Empty and
//     deleteGroups removes them.
//
// Exits 0 and prints `RESULT confluent-js-groups <version> ok` only if
// every check passed. GROUPS_TRACE=1 prints every rebalance_cb call;
// LIBRDKAFKA_DEBUG=cgrp,... turns on librdkafka's debug log in the members;
// GROUPS_DUP_OWN_CLIENT_ID=1: see step 6.

const path = require('path')
const { fork } = require('child_process')
const { EventEmitter } = require('events')
const PKG_DIR = path.join(__dirname, '..', 'confluent-js', 'node_modules', '@confluentinc', 'kafka-javascript')
const Kafka = require(PKG_DIR)
const PKG = require(path.join(PKG_DIR, 'package.json'))
const { ConsumerGroupStates, ConsumerGroupTypes } = Kafka

const PARTITIONS = 6
const FIRST_WAVE = 600
const KEYS = 60
const SESSION_TIMEOUT = 10000 // >= Kafka's group.min.session.timeout.ms (6 s)
const WAIT = 30000 // any single awaited condition
const QUIET = 2000 // window in which a static member's peer must see nothing
const STATE = Object.fromEntries(Object.entries(ConsumerGroupStates).map(([k, v]) => [v, k]))

const started = Date.now()
class CheckFailed extends Error {}
let currentStep = 'setup'
function check(cond, what) {
  if (!cond) throw new CheckFailed(`${currentStep}: ${what}`)
}
const secs = ms => (ms / 1000).toFixed(2)
function step(name) {
  currentStep = name
  console.log(`STEP [${secs(Date.now() - started)}s] ${name}`)
}
const info = msg => console.log(`  ${msg}`)
const sortNum = a => a.slice().sort((x, y) => x - y)
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)
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
const pause = ms => new Promise(resolve => setTimeout(resolve, ms))

// Every member message bumps `changes`; waitFor re-evaluates on each bump
// (and every 100 ms, for conditions on time).
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

// What one group consumed: (partition, offset) -> record, counted once its
// commit succeeded.
class Ledger {
  constructor(name) {
    this.name = name
    this.byPos = new Map()
    this.violations = []
  }
  add(member, [partition, offset, key, value]) {
    const pos = `${partition}:${offset}`
    const prev = this.byPos.get(pos)
    if (prev) this.violations.push(`${this.name}: ${pos} (${value}) consumed and committed by ${prev.member} and again by ${member.name}`)
    else this.byPos.set(pos, { member: member.name, partition, offset, key, value })
  }
  get size() {
    return this.byPos.size
  }
  records() {
    return [...this.byPos.values()]
  }
}

const everyMember = []
class Member {
  constructor(ctx, name, opts) {
    this.ctx = ctx
    this.name = name
    this.clientId = opts.clientId || name
    // The client id DescribeGroups shows for this member.
    this.describedClientId = opts.describedClientId || this.clientId
    this.groupId = opts.groupId
    this.ledger = opts.ledger
    this.strategy = opts.strategy || 'range,roundrobin' // librdkafka's default
    this.instanceId = opts.instanceId || null
    this.events = [] // rebalance_cb calls
    this.consumed = [] // records this member committed
    this.notes = []
    this.assignment = null // after the last rebalance_cb call
    this.ready = false
    this.exited = null
    everyMember.push(this)
  }
  get last() {
    return this.events[this.events.length - 1]
  }
  start() {
    const { bootstrap, topic } = this.ctx
    const cfg = {
      bootstrap,
      topic,
      groupId: this.groupId,
      name: this.name,
      clientId: this.clientId,
      strategy: this.strategy,
      instanceId: this.instanceId,
      sessionTimeoutMs: SESSION_TIMEOUT,
    }
    this.child = fork(path.join(__dirname, 'member.js'), [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.startedAt = Date.now()
    this.child.on('message', msg => {
      switch (msg.type) {
        case 'ready':
          this.ready = true
          break
        case 'rebalance':
          this.events.push(msg)
          this.assignment = msg.assignment
          if (process.env.GROUPS_TRACE) info(`(${this.name} ${msg.kind} ${JSON.stringify(msg.partitions)} -> ${JSON.stringify(msg.assignment)} ${msg.protocol})`)
          break
        case 'consumed':
          for (const r of msg.records) {
            this.consumed.push({ partition: r[0], offset: r[1] })
            this.ledger.add(this, r)
          }
          break
        case 'note':
          this.notes.push(msg.text)
          if (process.env.GROUPS_TRACE) info(`(${this.name}: ${msg.text})`)
          break
        case 'stopped':
          this.stopMs = msg.ms
          break
      }
      bump()
    })
    this.child.on('exit', (code, signal) => {
      this.exited = code === null ? `signal ${signal}` : code
      bump()
    })
    return waitFor(() => this.ready || this.exited !== null, WAIT, `${this.name} to connect`).then(() =>
      check(this.ready, `${this.name} could not start: ${this.notes.join('; ')}`)
    )
  }
  async stop() {
    if (!this.child || this.exited !== null) return
    this.child.send({ cmd: 'stop' })
    await waitFor(() => this.exited !== null, WAIT, `${this.name} to disconnect`)
    check(this.exited === 0, `${this.name} exited with ${this.exited}: ${this.notes.join('; ')}`)
  }
  kill() {
    if (this.child && this.exited === null) this.child.kill('SIGKILL')
  }
}

async function main() {
  const [bootstrap, prefix] = process.argv.slice(2)
  if (!bootstrap || prefix === undefined) {
    console.error('usage: node scenario.js BOOTSTRAP TOPIC_PREFIX')
    process.exit(2)
  }
  const run = Date.now().toString(36)
  const topic = `${prefix}confluent-js-groups-${run}`
  const ctx = { bootstrap, topic }
  console.log(`@confluentinc/kafka-javascript ${PKG.version} (librdkafka ${Kafka.librdkafkaVersion}) bootstrap=${bootstrap} topic=${topic}`)
  check(Kafka.librdkafkaVersion === PKG.librdkafka, `loaded librdkafka ${Kafka.librdkafkaVersion}, package built for ${PKG.librdkafka}`)

  const closers = []
  const admin = Kafka.AdminClient.create({ 'bootstrap.servers': bootstrap, 'client.id': 'gregor-matrix-confluent-js-groups-admin' })
  closers.push(() => admin.disconnect())
  const producer = new Kafka.Producer({
    'bootstrap.servers': bootstrap,
    'client.id': 'gregor-matrix-confluent-js-groups-producer',
    acks: 'all',
    'linger.ms': 5,
    dr_cb: true,
  })
  let produced = 0
  const producedValues = new Set()
  const pending = new Map()
  producer.on('delivery-report', (err, report) => {
    const p = pending.get(report.opaque)
    pending.delete(report.opaque)
    if (p) (err ? p.reject : p.resolve)(err || report)
  })

  async function produceWave(wave, n) {
    const acks = []
    for (let i = 0; i < n; i++) {
      const seq = produced + i
      const value = `w${wave}-${String(seq).padStart(5, '0')}`
      producedValues.add(value)
      acks.push(new Promise((resolve, reject) => pending.set(seq, { resolve, reject })))
      producer.produce(topic, null, Buffer.from(value), `key-${String(seq % KEYS).padStart(2, '0')}`, Date.now(), seq)
    }
    produced += n
    await withTimeout(Promise.all(acks), WAIT, `waiting for ${n} delivery reports`)
  }
  async function endOffsets() {
    const res = await cb2p(cb =>
      admin.listOffsets([...Array(PARTITIONS).keys()].map(p => ({ topic, partition: p, offset: Kafka.OffsetSpec.LATEST })), { timeout: WAIT }, cb)
    )
    const out = []
    for (const r of res) {
      check(!r.error, `listOffsets partition ${r.partition}: ${r.error && r.error.message}`)
      out[r.partition] = Number(r.offset)
    }
    return out
  }
  async function committedOffsets(groupId) {
    const parts = [...Array(PARTITIONS).keys()].map(p => ({ topic, partition: p }))
    const [res] = await cb2p(cb => admin.listConsumerGroupOffsets([{ groupId, partitions: parts }], { timeout: WAIT }, cb))
    check(!res.error, `listConsumerGroupOffsets ${groupId}: ${res.error && res.error.message}`)
    const out = []
    for (const p of res.partitions) {
      check(!p.error, `listConsumerGroupOffsets ${groupId} partition ${p.partition}: ${p.error && p.error.message}`)
      out[p.partition] = Number(p.offset)
    }
    return out
  }
  async function describe(groupId) {
    const { groups } = await cb2p(cb => admin.describeGroups([groupId], { timeout: WAIT }, cb))
    check(groups.length === 1 && groups[0].groupId === groupId, `describeGroups answered ${JSON.stringify(groups)}`)
    return groups[0]
  }
  async function listGroups() {
    const res = await cb2p(cb => admin.listGroups({ timeout: WAIT }, cb))
    check(!res.errors || res.errors.length === 0, `listGroups errors: ${JSON.stringify(res.errors)}`)
    return res.groups
  }
  // Every produced record consumed and committed exactly once by the group,
  // per-key order kept, committed offsets = end offsets.
  async function checkExactlyOnce(ledger, groupId) {
    await waitFor(
      () => ledger.size >= produced || ledger.violations.length,
      WAIT,
      `${ledger.name} to consume ${produced} records`,
      () => `(has ${ledger.size})`
    )
    check(ledger.violations.length === 0, ledger.violations.slice(0, 5).join('; '))
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
  // in their rebalance_cb: Stable, protocol type consumer, the protocol,
  // exactly these client ids (and instance ids) with their assignments,
  // which partition all six partitions. Then listGroups. Returns the
  // description.
  async function awaitStable(groupId, group, protocol, what) {
    const deadline = Date.now() + WAIT
    let d
    for (;;) {
      const why = await mismatch()
      if (!why) break
      if (Date.now() > deadline) throw new CheckFailed(`${currentStep}: ${what}: not stable after ${WAIT} ms: ${why}`)
      await Promise.race([new Promise(r => changes.once('change', r)), pause(200)])
    }
    async function mismatch() {
      for (const m of group) {
        if (m.exited !== null) return `${m.name} exited (${m.exited}): ${m.notes.join('; ')}`
        if (!m.last || m.last.kind !== 'assign') return `${m.name} has no assignment yet`
      }
      const owner = new Map()
      for (const m of group) {
        for (const p of m.assignment) {
          if (owner.has(p)) return `partition ${p} owned by ${owner.get(p)} and ${m.name}`
          owner.set(p, m.name)
        }
      }
      if (owner.size !== PARTITIONS) return `members own only ${sortNum([...owner.keys()])}`
      d = await describe(groupId)
      if (d.error) return `describeGroups: ${d.error.message}`
      if (d.state !== ConsumerGroupStates.STABLE) return `state ${STATE[d.state]}`
      if (d.protocolType !== 'consumer') return `protocolType ${d.protocolType}`
      if (d.protocol !== protocol) return `protocol ${d.protocol}, expected ${protocol}`
      if (d.members.length !== group.length) return `${d.members.length} members described, ${group.length} running`
      for (const dm of d.members) {
        const m = group.find(x => x.describedClientId === dm.clientId)
        if (!m) return `described member ${dm.memberId} (client id ${dm.clientId}) is none of ours`
        const parts = sortNum(((dm.assignment && dm.assignment.topicPartitions) || []).filter(t => t.topic === topic).map(t => t.partition))
        if (!same(parts, m.assignment)) return `${m.name}: described assignment ${JSON.stringify(parts)}, member has ${JSON.stringify(m.assignment)}`
        if ((dm.groupInstanceId || null) !== m.instanceId) return `${m.name}: described instance id ${dm.groupInstanceId}, expected ${m.instanceId}`
        m.memberId = dm.memberId
      }
      return ''
    }
    for (const dm of d.members) {
      check(/127\.0\.0\.1/.test(dm.clientHost), `${groupId}: member ${dm.clientId} clientHost ${JSON.stringify(dm.clientHost)}`)
    }
    const l = (await listGroups()).find(g => g.groupId === groupId)
    check(l, `listGroups does not list ${groupId}`)
    check(l.protocolType === 'consumer', `listGroups: ${groupId} protocolType ${l.protocolType}`)
    check(l.state === ConsumerGroupStates.STABLE, `listGroups: ${groupId} state ${STATE[l.state]}`)
    check(l.isSimpleConsumerGroup === false, `listGroups: ${groupId} isSimpleConsumerGroup ${l.isSimpleConsumerGroup}`)
    check(l.type === ConsumerGroupTypes.CLASSIC, `listGroups: ${groupId} type ${l.type}, expected CLASSIC (${ConsumerGroupTypes.CLASSIC})`)
    check(d.type === ConsumerGroupTypes.CLASSIC, `describeGroups: ${groupId} type ${d.type}, expected CLASSIC`)
    check(d.isSimpleConsumerGroup === false, `describeGroups: ${groupId} isSimpleConsumerGroup ${d.isSimpleConsumerGroup}`)
    const layout = group
      .slice()
      .sort((a, b) => (a.memberId < b.memberId ? -1 : 1))
      .map(m => `${m.name}=${JSON.stringify(m.assignment)}`)
    info(`${what}: Stable, ${d.members.length} members, ${protocol}: ${layout.join(' ')}`)
    return d
  }
  // librdkafka's range assignor: contiguous ranges over the members sorted
  // by member id, the first ones getting one more.
  function checkRange(group, name) {
    const sorted = group.slice().sort((a, b) => (a.memberId < b.memberId ? -1 : 1))
    const per = Math.floor(PARTITIONS / sorted.length)
    const extra = PARTITIONS % sorted.length
    let next = 0
    sorted.forEach((m, i) => {
      const n = per + (i < extra ? 1 : 0)
      const want = [...Array(n).keys()].map(k => next + k)
      next += n
      check(same(m.assignment, want), `${name}: ${m.name} owns ${JSON.stringify(m.assignment)}, range gives it ${JSON.stringify(want)}`)
    })
  }
  function snapshot(group) {
    return group.map(m => ({ m, events: m.events.length, consumed: m.consumed.length }))
  }
  function checkOwnersConsumed(snap, name) {
    for (const { m, events, consumed } of snap) {
      check(m.events.length === events, `${name}: ${m.name} saw a rebalance while the group was stable: ${JSON.stringify(m.events.slice(events))}`)
      for (const r of m.consumed.slice(consumed)) {
        check(m.assignment.includes(r.partition), `${name}: ${m.name} consumed partition ${r.partition} it does not own`)
      }
    }
  }
  const startAll = group => Promise.all(group.map(m => m.start()))
  const stopAll = group => Promise.all(group.map(m => m.stop()))

  try {
    // 1. Topic and records.
    step('1 create topic, produce')
    await withTimeout(cb2p(cb => admin.createTopic({ topic, num_partitions: PARTITIONS, replication_factor: 1 }, WAIT, cb)), WAIT + 5000, 'creating the topic')
    await withTimeout(cb2p(cb => producer.connect({ timeout: WAIT }, cb)), WAIT, 'connecting the producer')
    producer.setPollInterval(10)
    closers.push(() => cb2p(cb => producer.disconnect(5000, cb)))
    await produceWave(1, FIRST_WAVE)
    const ends1 = await endOffsets()
    check(ends1.reduce((a, b) => a + b, 0) === FIRST_WAVE, `end offsets ${JSON.stringify(ends1)} do not add up to ${FIRST_WAVE}`)
    check(ends1.every(n => n > 0), `a partition got no records: ${JSON.stringify(ends1)}`)
    info(`${FIRST_WAVE} records, end offsets ${JSON.stringify(ends1)}`)

    // 2. Three members, default assignor.
    step('2 three members of group A (range, commitSync)')
    const groupA = `${prefix}confluent-js-groups-A-${run}`
    const ledgerA = new Ledger('group A')
    const aOpts = { groupId: groupA, ledger: ledgerA }
    const a = [1, 2, 3].map(i => new Member(ctx, `cjs-a${i}`, aOpts))
    let t0 = Date.now()
    await startAll(a)
    await checkExactlyOnce(ledgerA, groupA)
    info(`all ${produced} records consumed once and committed in ${Date.now() - t0} ms`)
    await awaitStable(groupA, a, 'range', 'three members')
    for (const m of a) {
      check(m.assignment.length === 2, `${m.name} owns ${JSON.stringify(m.assignment)}, expected 2 partitions`)
      check(m.last.protocol === 'EAGER', `${m.name}: rebalance protocol ${m.last.protocol}, expected EAGER`)
    }
    checkRange(a, 'range, three members')
    let snap = snapshot(a)
    await produceWave(2, 120)
    await checkExactlyOnce(ledgerA, groupA)
    checkOwnersConsumed(snap, 'second wave')
    info("second wave (120) consumed once, each record by its partition's owner, no rebalance")

    // 3. One member leaves cleanly.
    step('3 one member disconnects')
    const leaving = a[0]
    const stay = a.slice(1)
    const before = stay.map(m => m.events.length)
    t0 = Date.now()
    await leaving.stop()
    const tLeft = Date.now() - t0
    await waitFor(
      () => stay.every((m, i) => m.events.length > before[i] && m.last.kind === 'assign') && new Set(stay.flatMap(m => m.assignment)).size === PARTITIONS,
      WAIT,
      'the two others to take over all partitions',
      () => JSON.stringify(stay.map(m => m.assignment))
    )
    const tTakeover = Date.now() - t0
    info(`${leaving.name} closed in ${tLeft} ms; ${stay.map(m => m.name).join(', ')} own all partitions ${tTakeover} ms after the close started`)
    check(tTakeover < SESSION_TIMEOUT / 2, `takeover took ${tTakeover} ms: LeaveGroup not acted upon (session timeout ${SESSION_TIMEOUT} ms)`)
    await awaitStable(groupA, stay, 'range', 'after one member left')
    checkRange(stay, 'range, two members')
    snap = snapshot(stay)
    await produceWave(3, 60)
    await checkExactlyOnce(ledgerA, groupA)
    checkOwnersConsumed(snap, 'third wave')
    info('third wave (60) consumed once by the new owners, committed = end')

    // 4. Seven members on six partitions.
    step('4 seven members on six partitions')
    const more = [4, 5, 6, 7, 8].map(i => new Member(ctx, `cjs-a${i}`, aOpts))
    const seven = stay.concat(more)
    t0 = Date.now()
    await startAll(more)
    await awaitStable(groupA, seven, 'range', 'seven members')
    info(`seven members stable ${Date.now() - t0} ms after the five were started`)
    const idle = seven.filter(m => m.assignment.length === 0)
    check(idle.length === 1, `${idle.length} idle members: ${idle.map(m => m.name)}`)
    checkRange(seven, 'range, seven members')
    info(`idle: ${idle[0].name} (last in member-id order)`)
    snap = snapshot(seven)
    await produceWave(4, 70)
    let endsA = await checkExactlyOnce(ledgerA, groupA)
    checkOwnersConsumed(snap, 'fourth wave')
    info('fourth wave (70) consumed once by the six owners')
    // A member that dies without a word (SIGKILL, no LeaveGroup) is
    // removed when its session times out; the idle member steps in.
    const victim = seven.find(m => m.assignment.includes(0))
    const six = seven.filter(m => m !== victim)
    const sixBefore = six.map(m => m.events.length)
    t0 = Date.now()
    victim.kill()
    await waitFor(
      () => six.every((m, i) => m.events.length > sixBefore[i] && m.last.kind === 'assign') && new Set(six.flatMap(m => m.assignment)).size === PARTITIONS,
      SESSION_TIMEOUT + WAIT,
      `the six others to take over after ${victim.name} was killed`,
      () => JSON.stringify(six.map(m => m.assignment))
    )
    const tExpired = Date.now() - t0
    info(`${victim.name} killed (SIGKILL): the six others own all partitions ${tExpired} ms later (session.timeout.ms ${SESSION_TIMEOUT})`)
    check(tExpired >= SESSION_TIMEOUT - 2 * 1000, `the killed member was dropped after ${tExpired} ms, before its session (${SESSION_TIMEOUT} ms) could expire`)
    check(tExpired <= SESSION_TIMEOUT + 10000, `the killed member was dropped only after ${tExpired} ms`)
    await awaitStable(groupA, six, 'range', 'after the session of the killed member expired')
    checkRange(six, 'range, six members')
    snap = snapshot(six)
    await produceWave(4, 30)
    endsA = await checkExactlyOnce(ledgerA, groupA)
    checkOwnersConsumed(snap, 'after the expiry')
    info('30 more records consumed once by the six')
    t0 = Date.now()
    await stopAll(six)
    {
      const d = await describe(groupA)
      check(d.state === ConsumerGroupStates.EMPTY && d.members.length === 0, `after every member left: state ${STATE[d.state]}, ${d.members.length} members`)
    }
    info(`the six closed in ${Date.now() - t0} ms; group A is Empty`)

    // 5. Cooperative-sticky, incremental rebalance.
    step('5 cooperative-sticky (group C)')
    const groupC = `${prefix}confluent-js-groups-C-${run}`
    const ledgerC = new Ledger('group C')
    const cOpts = { groupId: groupC, ledger: ledgerC, strategy: 'cooperative-sticky' }
    const c = [1, 2].map(i => new Member(ctx, `cjs-c${i}`, cOpts))
    await startAll(c)
    await checkExactlyOnce(ledgerC, groupC)
    await awaitStable(groupC, c, 'cooperative-sticky', 'two members')
    for (const m of c) {
      check(m.assignment.length === 3, `${m.name} owns ${JSON.stringify(m.assignment)}, expected 3`)
      check(m.events.every(e => e.protocol === 'COOPERATIVE'), `${m.name}: rebalance protocol ${m.last.protocol}, expected COOPERATIVE`)
    }
    const beforeC = c.map(m => ({ events: m.events.length, owned: m.assignment.slice() }))
    const c3 = new Member(ctx, 'cjs-c3', cOpts)
    const c3all = c.concat(c3)
    // Keep producing while the third member joins, until the group is
    // stable with three (an event), at most 60 chunks.
    let joined = false
    const flowing = (async () => {
      for (let i = 0; i < 60 && !joined; i++) {
        await produceWave(5, 10)
        await pause(50)
      }
    })()
    t0 = Date.now()
    await c3.start()
    await waitFor(
      () => c3all.every(m => m.last && m.last.kind === 'assign') && c3.assignment.length === 2 && c.every(m => m.assignment.length === 2),
      WAIT,
      'the incremental rebalance to finish',
      () => JSON.stringify(c3all.map(m => m.assignment))
    ).finally(() => (joined = true))
    await flowing
    await awaitStable(groupC, c3all, 'cooperative-sticky', 'a third member joined')
    info(`third member owns ${JSON.stringify(c3.assignment)} ${Date.now() - t0} ms after it started`)
    const moved = []
    c.forEach((m, i) => {
      const evs = m.events.slice(beforeC[i].events)
      const revoked = evs.filter(e => e.kind === 'revoke').flatMap(e => e.partitions)
      const added = evs.filter(e => e.kind === 'assign').flatMap(e => e.partitions)
      check(evs.every(e => e.protocol === 'COOPERATIVE'), `${m.name}: a non-cooperative rebalance: ${JSON.stringify(evs)}`)
      check(revoked.length === 1, `${m.name} was revoked ${JSON.stringify(revoked)}, expected exactly one partition (incremental)`)
      check(added.length === 0, `${m.name} was assigned ${JSON.stringify(added)} in an incremental rebalance that only takes partitions away`)
      check(same(m.assignment, beforeC[i].owned.filter(p => !revoked.includes(p))), `${m.name} now owns ${JSON.stringify(m.assignment)}, had ${JSON.stringify(beforeC[i].owned)}`)
      info(`${m.name}: kept ${JSON.stringify(m.assignment)}, revoked only ${JSON.stringify(revoked)} (${evs.length} rebalance_cb calls: ${evs.map(e => `${e.kind}${JSON.stringify(e.partitions)}`).join(' ')})`)
      moved.push(...revoked)
    })
    check(same(sortNum(moved), c3.assignment), `the newcomer got ${JSON.stringify(c3.assignment)}, the others gave up ${JSON.stringify(sortNum(moved))}`)
    check(c3.events.every(e => e.protocol === 'COOPERATIVE' && e.kind === 'assign'), `the newcomer's rebalances: ${JSON.stringify(c3.events)}`)
    const endsC = await checkExactlyOnce(ledgerC, groupC)
    info(`only ${moved.length} of ${PARTITIONS} partitions moved; ${produced} records consumed once across the incremental rebalance, committed = end`)
    await stopAll(c3all)

    // 6. Static membership.
    step('6 static membership (group S, group.instance.id)')
    const groupS = `${prefix}confluent-js-groups-S-${run}`
    const ledgerS = new Ledger('group S')
    const sOpts = { groupId: groupS, ledger: ledgerS }
    let s = [1, 2].map(i => new Member(ctx, `cjs-s${i}`, { ...sOpts, instanceId: `${prefix}static-${i}-${run}` }))
    await startAll(s)
    await checkExactlyOnce(ledgerS, groupS)
    await awaitStable(groupS, s, 'range', 'two static members')
    for (const i of [0, 1]) {
      const old = s[i]
      const other = s[1 - i]
      const oldMemberId = old.memberId
      const had = old.assignment.slice()
      const otherEvents = other.events.length
      t0 = Date.now()
      await old.stop()
      const tClosed = Date.now() - t0
      const fresh = new Member(ctx, old.name, { ...sOpts, instanceId: old.instanceId })
      await fresh.start()
      await waitFor(() => fresh.last && fresh.last.kind === 'assign', WAIT, `restarted ${fresh.name} to get an assignment`)
      const tBack = Date.now() - t0
      check(same(fresh.assignment, had), `restarted ${fresh.name} got ${JSON.stringify(fresh.assignment)}, had ${JSON.stringify(had)}`)
      check(tBack < SESSION_TIMEOUT, `restarted ${fresh.name} got its partitions back only after ${tBack} ms`)
      // The peer must see nothing: no revoke, no assign, for a while.
      await pause(QUIET)
      check(other.events.length === otherEvents, `${other.name} saw a rebalance while ${old.name} restarted: ${JSON.stringify(other.events.slice(otherEvents))}`)
      s = i === 0 ? [fresh, other] : [other, fresh]
      await awaitStable(groupS, s, 'range', `${fresh.name} restarted`)
      check(fresh.memberId !== oldMemberId, `restarted ${fresh.name} kept member id ${oldMemberId}`)
      info(`${old.name} (instance ${old.instanceId}) closed in ${tClosed} ms, back with ${JSON.stringify(fresh.assignment)} ${tBack} ms after the close began; ${other.name} saw no rebalance in ${secs(tBack + QUIET)} s; new member id`)
    }
    // A second process with an instance id already in use takes over the
    // member (same partitions, no rebalance); the first one is fenced.
    {
      const [other, old] = s
      const otherEvents = other.events.length
      const had = old.assignment.slice()
      const oldMemberId = old.memberId
      // Kafka keeps the replaced member's client id and host ("keep
      // everything else unchanged", replaceStaticMember), so DescribeGroups
      // shows the old client id for the new process. The duplicate uses the
      // same client id, as a second copy of a deployment would; with
      // GROUPS_DUP_OWN_CLIENT_ID=1 it uses its own and the old one is
      // expected in DescribeGroups (Kafka's behaviour).
      const ownId = process.env.GROUPS_DUP_OWN_CLIENT_ID === '1'
      const dup = new Member(ctx, `${old.name}-dup`, {
        ...sOpts,
        instanceId: old.instanceId,
        clientId: ownId ? `${old.clientId}-dup` : old.clientId,
        describedClientId: old.clientId,
      })
      t0 = Date.now()
      await dup.start()
      await waitFor(() => dup.last && dup.last.kind === 'assign', WAIT, `${dup.name} to get an assignment`)
      const tDup = Date.now() - t0
      check(same(dup.assignment, had), `${dup.name} (instance ${old.instanceId}) got ${JSON.stringify(dup.assignment)}, the member it replaces had ${JSON.stringify(had)}`)
      await waitFor(() => old.notes.some(n => /^fatal: .*fenced/i.test(n)), WAIT, `${old.name} to be fenced`, () => JSON.stringify(old.notes))
      const tFenced = Date.now() - t0
      await pause(QUIET)
      check(other.events.length === otherEvents, `${other.name} saw a rebalance when ${dup.name} replaced ${old.name}: ${JSON.stringify(other.events.slice(otherEvents))}`)
      s = [other, dup]
      await awaitStable(groupS, s, 'range', `${dup.name} replaced ${old.name}`)
      check(dup.memberId !== oldMemberId, `${dup.name} got the member id of the member it replaced`)
      info(`${dup.name} with ${old.name}'s instance id got ${JSON.stringify(dup.assignment)} in ${tDup} ms without a rebalance; ${old.name} fenced after ${tFenced} ms: ${old.notes.find(n => /^fatal: .*fenced/i.test(n))}`)
      await old.stop().catch(e => info(`(closing the fenced ${old.name}: ${e.message})`))
      await awaitStable(groupS, s, 'range', `the fenced ${old.name} closed`)
    }
    snap = snapshot(s)
    await produceWave(6, 60)
    const endsS = await checkExactlyOnce(ledgerS, groupS)
    checkOwnersConsumed(snap, 'sixth wave')
    info('sixth wave (60) consumed once by the static members')
    // Static members do not send LeaveGroup on close: they stay in the
    // group until their session times out, then the group is Empty.
    t0 = Date.now()
    await stopAll(s)
    {
      const d = await describe(groupS)
      check(d.state === ConsumerGroupStates.STABLE && d.members.length === 2, `right after closing both static members: ${STATE[d.state]}, ${d.members.length} members (expected Stable with both until their sessions expire)`)
    }
    const deadline = Date.now() + SESSION_TIMEOUT + WAIT
    for (;;) {
      const d = await describe(groupS)
      if (d.state === ConsumerGroupStates.EMPTY && d.members.length === 0) break
      check(Date.now() < deadline, `group S still ${STATE[d.state]} with ${d.members.length} members ${Date.now() - t0} ms after both static members closed`)
      await pause(250)
    }
    const tEmpty = Date.now() - t0
    info(`both static members closed: still members until their sessions expired; group S Empty after ${tEmpty} ms`)
    check(tEmpty >= SESSION_TIMEOUT - 2000, `group S emptied after ${tEmpty} ms, before the static members' sessions (${SESSION_TIMEOUT} ms) could expire`)

    // 7. At rest: Empty, listGroups, deleteGroups.
    step('7 groups at rest: describe, list, delete')
    for (const [g, want] of [[groupA, endsA], [groupC, endsC], [groupS, endsS]]) {
      const d = await describe(g)
      check(d.state === ConsumerGroupStates.EMPTY && d.members.length === 0, `${g}: state ${STATE[d.state]}, ${d.members.length} members`)
      check(d.protocolType === 'consumer', `${g}: protocolType ${JSON.stringify(d.protocolType)}`)
      const got = await committedOffsets(g)
      check(same(got, want), `${g}: committed ${JSON.stringify(got)} after leaving, expected ${JSON.stringify(want)}`)
    }
    const listed = await listGroups()
    for (const g of [groupA, groupC, groupS]) {
      const l = listed.find(x => x.groupId === g)
      check(l && l.protocolType === 'consumer' && l.state === ConsumerGroupStates.EMPTY, `listGroups: ${g} ${JSON.stringify(l)}`)
    }
    const emptyOnly = await cb2p(cb => admin.listGroups({ timeout: WAIT, matchConsumerGroupStates: [ConsumerGroupStates.EMPTY] }, cb))
    for (const g of [groupA, groupC, groupS]) check(emptyOnly.groups.some(x => x.groupId === g), `listGroups(state Empty) does not list ${g}`)
    const stableOnly = await cb2p(cb => admin.listGroups({ timeout: WAIT, matchConsumerGroupStates: [ConsumerGroupStates.STABLE] }, cb))
    for (const g of [groupA, groupC, groupS]) check(!stableOnly.groups.some(x => x.groupId === g), `listGroups(state Stable) lists the empty group ${g}`)
    const classic = await cb2p(cb => admin.listGroups({ timeout: WAIT, matchConsumerGroupTypes: [ConsumerGroupTypes.CLASSIC] }, cb))
    for (const g of [groupA, groupC, groupS]) check(classic.groups.some(x => x.groupId === g), `listGroups(type classic) does not list ${g}`)
    const kip848 = await cb2p(cb => admin.listGroups({ timeout: WAIT, matchConsumerGroupTypes: [ConsumerGroupTypes.CONSUMER] }, cb))
    for (const g of [groupA, groupC, groupS]) check(!kip848.groups.some(x => x.groupId === g), `listGroups(type consumer) lists the classic group ${g}`)
    const deleted = await cb2p(cb => admin.deleteGroups([groupA, groupC, groupS], { timeout: WAIT }, cb))
    check(deleted.length === 3 && deleted.every(r => !r.error), `deleteGroups: ${JSON.stringify(deleted)}`)
    const listed2 = await listGroups()
    check(!listed2.some(x => [groupA, groupC, groupS].includes(x.groupId)), 'deleted groups are still listed')
    const gone = await committedOffsets(groupA)
    check(gone.every(o => o < 0), `offsets of a deleted group: ${JSON.stringify(gone)}`)
    info('groups A, C and S Empty with their offsets; listGroups by state and by type; deleteGroups removed them')
  } finally {
    for (const m of everyMember) m.kill()
    for (const cl of closers.reverse()) {
      try {
        await withTimeout(Promise.resolve(cl()), 10000, 'closing')
      } catch (e) {
        // closing errors do not change the outcome
      }
    }
  }
}

// A last resort: no run outlives this, whatever hangs.
setTimeout(() => {
  console.error(`FAIL ${currentStep}: the scenario did not finish within 240 s`)
  for (const m of everyMember) m.kill()
  process.exit(1)
}, 240000).unref()

main().then(
  () => {
    console.log(`total ${secs(Date.now() - started)} s`)
    // Printed after every client is closed, so that it is the last line.
    console.log(`RESULT confluent-js-groups ${PKG.version} ok`)
    process.exit(0)
  },
  e => {
    if (e instanceof CheckFailed) console.error(`FAIL ${e.message}`)
    else console.error(`FAIL ${currentStep}: ${e && e.stack ? e.stack : e}`)
    for (const m of everyMember) {
      if (m.notes.length) console.error(`  ${m.name} notes: ${m.notes.slice(-5).join(' | ')}`)
    }
    process.exit(1)
  }
)
