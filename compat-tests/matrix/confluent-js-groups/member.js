'use strict'
// One consumer-group member of scenario.js, in its own process (a forked
// child; it talks to the scenario over the IPC channel):
//
//   node member.js '{"bootstrap":..., "topic":..., "groupId":..., "name":...,
//                    "strategy":..., "instanceId":..., "sessionTimeoutMs":...}'
//
// A node-rdkafka-style KafkaConsumer: subscribe(), a rebalance_cb that
// assigns/unassigns (incrementally under the COOPERATIVE protocol) and
// reports every call, a consume() loop, and a synchronous commit
// (commitSync) of every record before it counts as consumed. A record of a
// partition this member no longer owns is neither committed nor counted; a
// failed commit rewinds the partition (seek) so the record is read again.
//
// To the scenario: {type:'ready'}, {type:'rebalance', kind, partitions,
// assignment, protocol, at}, {type:'consumed', records:[[p, offset, key,
// value]]}, {type:'note', text}, {type:'stopped', ms}. From the scenario:
// {cmd:'stop'} (disconnect: close the consumer; a dynamic member sends
// LeaveGroup, a static one, by KIP-345, does not).

const path = require('path')
const Kafka = require(path.join(__dirname, '..', 'confluent-js', 'node_modules', '@confluentinc', 'kafka-javascript'))

const cfg = JSON.parse(process.argv[2])
const { ERR__ASSIGN_PARTITIONS, ERR__REVOKE_PARTITIONS } = Kafka.CODES.ERRORS
const send = msg => {
  if (process.connected) process.send(msg)
}
const noted = new Set()
const note = text => {
  if (noted.has(text) || noted.size > 100) return
  noted.add(text)
  send({ type: 'note', text })
}

const owned = new Set()
const conf = {
  'bootstrap.servers': cfg.bootstrap,
  'client.id': cfg.clientId,
  'group.id': cfg.groupId,
  'enable.auto.commit': false,
  'enable.auto.offset.store': false,
  'auto.offset.reset': 'earliest',
  'session.timeout.ms': cfg.sessionTimeoutMs,
  'heartbeat.interval.ms': 500,
  'fetch.wait.max.ms': 100,
  'partition.assignment.strategy': cfg.strategy,
  // (Not assignmentLost(): the binding dereferences the closed consumer and
  // crashes when the final revoke of close() reaches this callback.)
  rebalance_cb(err, assignment) {
    const protocol = this.rebalanceProtocol()
    const mine = assignment.filter(t => t.topic === cfg.topic).map(t => t.partition)
    let kind
    try {
      if (err.code === ERR__ASSIGN_PARTITIONS) {
        kind = 'assign'
        if (protocol === 'COOPERATIVE') this.incrementalAssign(assignment)
        else {
          this.assign(assignment)
          owned.clear()
        }
        for (const p of mine) owned.add(p)
      } else if (err.code === ERR__REVOKE_PARTITIONS) {
        kind = 'revoke'
        if (protocol === 'COOPERATIVE') this.incrementalUnassign(assignment)
        else this.unassign()
        for (const p of mine) {
          owned.delete(p)
          rewound.delete(p) // a new owner starts from the committed offset
        }
        if (protocol !== 'COOPERATIVE') {
          owned.clear()
          rewound.clear()
        }
      } else {
        kind = `error ${err.code} ${err.message}`
      }
    } catch (e) {
      note(`rebalance_cb ${kind}: ${e.message}`)
    }
    send({
      type: 'rebalance',
      kind,
      partitions: mine.sort((a, b) => a - b),
      assignment: [...owned].sort((a, b) => a - b),
      protocol,
      at: Date.now(),
    })
  },
}
if (cfg.instanceId) conf['group.instance.id'] = cfg.instanceId
if (process.env.LIBRDKAFKA_DEBUG) {
  conf.debug = process.env.LIBRDKAFKA_DEBUG
  conf.event_cb = true
}

const consumer = new Kafka.KafkaConsumer(conf)
consumer.on('event.error', e => note(`event.error: ${e.message}`))
consumer.on('event.log', l => {
  // A fatal error (e.g. fenced by another member with the same
  // group.instance.id) is only explained in the log.
  if (l.fac === 'FATAL') note(`fatal: ${l.message}`)
  process.stderr.write(`${cfg.name} ${l.fac} ${l.message}\n`)
})

let stopping = false
let loopDone
const loopFinished = new Promise(r => (loopDone = r))

function consumeBatch() {
  return new Promise(resolve => {
    consumer.consume(200, (err, msgs) => {
      if (err) {
        if (!stopping) note(`consume: ${err.message}`)
        resolve([])
      } else resolve(msgs)
    })
  })
}

// Partition -> the offset a failed commit rewound it to. The seek takes
// effect asynchronously: records librdkafka had already fetched past that
// offset may still arrive, and must be skipped (not committed) until the
// rewound offset comes round again.
const rewound = new Map()

async function loop() {
  while (!stopping) {
    const msgs = await consumeBatch()
    if (stopping) break
    const records = []
    // Synchronous from here to the send: no rebalance_cb can run between
    // the ownership check and the commit.
    for (const m of msgs) {
      if (m.topic !== cfg.topic || !owned.has(m.partition)) continue
      if (rewound.has(m.partition)) {
        if (m.offset !== rewound.get(m.partition)) continue
        rewound.delete(m.partition)
      }
      try {
        consumer.commitSync({ topic: m.topic, partition: m.partition, offset: m.offset + 1 })
      } catch (e) {
        note(`commitSync ${m.partition}@${m.offset + 1} failed: ${e.message} (rewinding)`)
        rewound.set(m.partition, m.offset)
        try {
          consumer.seek({ topic: m.topic, partition: m.partition, offset: m.offset }, 0, () => {})
        } catch (e2) {
          note(`seek ${m.partition}@${m.offset}: ${e2.message}`)
        }
        continue
      }
      records.push([m.partition, m.offset, m.key === null ? null : String(m.key), String(m.value)])
    }
    if (records.length) send({ type: 'consumed', records })
  }
  loopDone()
}

process.on('message', async msg => {
  if (msg.cmd === 'stop' && !stopping) {
    stopping = true
    await loopFinished
    const t0 = Date.now()
    consumer.disconnect(err => {
      if (err) note(`disconnect: ${err.message}`)
      send({ type: 'stopped', ms: Date.now() - t0 })
      setImmediate(() => process.exit(0))
    })
  }
})
process.on('disconnect', () => process.exit(3)) // the scenario went away

consumer.setDefaultConsumeTimeout(100)
consumer.setDefaultIsTimeoutOnlyForFirstMessage(true)
consumer.connect({ timeout: 30000 }, err => {
  if (err) {
    note(`connect: ${err.message}`)
    process.exit(2)
  }
  consumer.subscribe([cfg.topic])
  send({ type: 'ready' })
  loop()
})
