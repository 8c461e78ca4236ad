//! librdkafka (the rdkafka crate) against a 3-broker virtual cluster
//! (issue 11), through Gregor's embedded broker API: leaders move, a
//! broker goes down and comes back, connections are cut after a Produce
//! is processed and before its answer, the coordinator moves.
//!
//! What must hold, as on a real Kafka cluster:
//! - an idempotent producer (acks=all) delivers every record once, in
//!   order per partition, with no error surfaced;
//! - a consumer group keeps consuming through the same and its committed
//!   offsets survive a coordinator move.
//!
//! Run: `cargo test -p gregor-compat --test virtual_cluster -- --nocapture`

#![allow(clippy::unwrap_used)] // test code: a failed step should stop loudly

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gregor_broker::embedded::EmbeddedBroker;
use gregor_broker::fault::Filter;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const PARTITIONS: i32 = 6;

/// Counts deliveries and keeps every delivery error.
#[derive(Clone, Default)]
struct Deliveries {
    ok: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::AcqRel);
            }
            Err((e, _)) => self.errors.lock().unwrap().push(e.to_string()),
        }
    }
}

fn cluster() -> EmbeddedBroker {
    // The broker's log, when asked for (GREGOR_LOG=debug).
    if let Ok(filter) = std::env::var("GREGOR_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    EmbeddedBroker::builder()
        .virtual_brokers(3)
        .config("num.partitions", &PARTITIONS.to_string())
        .start()
        .unwrap()
}

/// Waits until `cond` holds (an event), failing after `limit`.
fn await_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Leaders of the topic's partitions (broker ids), as the cluster says.
fn leaders(k: &EmbeddedBroker, topic: &str) -> Vec<i32> {
    (0..PARTITIONS)
        .map(|p| k.cluster().leader(topic, p).id)
        .collect()
}

/// Reads every partition from the start to its high watermark; returns
/// per partition the payloads in offset order.
fn read_all(bootstrap: &str, topic: &str) -> BTreeMap<i32, Vec<u64>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut want = BTreeMap::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
        let (_, hi) = c
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap();
        want.insert(p, hi);
    }
    c.assign(&tpl).unwrap();
    let mut got: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    let total: i64 = want.values().sum();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.values().map(Vec::len).sum::<usize>() < usize::try_from(total).unwrap() {
        assert!(Instant::now() < deadline, "reading back timed out: {got:?}");
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            let v: u64 = std::str::from_utf8(m.payload().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            got.entry(m.partition()).or_default().push(v);
        }
    }
    got
}

/// Leaves the group: the revocation is an event the application serves
/// by polling (librdkafka waits for it), then the client is closed.
///
/// The close runs on a thread of its own that the test does not wait for:
/// in this process librdkafka 2.12.1's `rd_kafka_destroy` can wait on its
/// broker threads long after the group was left (the LeaveGroup is sent
/// before), with one broker as with three; what the test checks is the
/// group, not the client's teardown.
fn leave(c: BaseConsumer) {
    c.unsubscribe();
    await_until("the revocation on leaving", Duration::from_secs(30), || {
        let _ = c.poll(Duration::from_millis(50));
        c.assignment().map(|a| a.count() == 0).unwrap_or(false)
    });
    std::thread::spawn(move || drop(c));
}

#[test]
fn idempotent_producer_keeps_order_through_moves_a_broker_down_and_cut_connections() {
    let k = cluster();
    let topic = "vc-idempotent";
    let ctx = Deliveries::default();
    let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", k.bootstrap())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .create_with_context(ctx.clone())
        .unwrap();
    const N: usize = 30_000;
    let mut next = [0u64; 6];
    let mut sent = 0;
    let mut send_until = |upto: usize, sent: &mut usize| {
        while *sent < upto {
            let p = i32::try_from(*sent % 6).unwrap();
            let seq = next[*sent % 6].to_string();
            let rec = BaseRecord::<str, str>::to(topic).partition(p).payload(&seq);
            match producer.send(rec) {
                Ok(()) => {
                    next[*sent % 6] += 1;
                    *sent += 1;
                }
                // Queue full: let deliveries drain.
                Err((_, _)) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    };
    // The topic exists once the first records are in.
    send_until(1000, &mut sent);
    await_until("the first deliveries", Duration::from_secs(30), || {
        ctx.ok.load(Ordering::Acquire) > 0
    });
    let before = leaders(&k, topic);
    assert!(
        before.contains(&1) && before.contains(&2) && before.contains(&3),
        "{before:?}"
    );

    // Every partition broker 1 leads moves to broker 2, records in flight.
    eprintln!("leaders at start: {before:?}; moving broker 1's to 2");
    let moved = k
        .cluster()
        .move_all(1, Some(2), &k.broker().partition_ends())
        .unwrap();
    assert!(moved >= 1);
    send_until(8000, &mut sent);
    // Broker 3 goes down: its connections close, its partitions move.
    eprintln!(
        "broker 3 down at {sent} sent, {} delivered",
        ctx.ok.load(Ordering::Acquire)
    );
    let moved = k.broker_down(3).unwrap();
    assert!(moved >= 1);
    assert!(!leaders(&k, topic).contains(&3));
    send_until(15_000, &mut sent);
    // Connections cut after appends, before their answers: the producer
    // must retry them and the broker must recognise the retries.
    eprintln!(
        "cutting 4 Produce connections at {sent} sent, {} delivered",
        ctx.ok.load(Ordering::Acquire)
    );
    k.faults()
        .close_before_response(Some("Produce"), 4, Filter::default())
        .unwrap();
    send_until(22_000, &mut sent);
    await_until("the cut connections", Duration::from_secs(60), || {
        k.faults().snapshot().close.is_empty()
    });
    eprintln!(
        "broker 3 up at {sent} sent, {} delivered",
        ctx.ok.load(Ordering::Acquire)
    );
    k.broker_up(3).unwrap();
    let moved = k.move_leader(topic, 0, 3).unwrap();
    assert!(moved.epoch >= 1);
    send_until(N, &mut sent);
    eprintln!(
        "flushing at {sent} sent, {} delivered",
        ctx.ok.load(Ordering::Acquire)
    );
    producer.flush(Duration::from_secs(120)).unwrap();
    eprintln!("flushed");

    assert_eq!(*ctx.errors.lock().unwrap(), Vec::<String>::new());
    assert_eq!(ctx.ok.load(Ordering::Acquire), N);
    let got = read_all(&k.bootstrap(), topic);
    for p in 0..PARTITIONS {
        let want: Vec<u64> = (0..(N / 6) as u64).collect();
        let have = got.get(&p).cloned().unwrap_or_default();
        assert!(
            have == want,
            "partition {p}: {} records, first differences at {:?}",
            have.len(),
            have.iter().zip(&want).position(|(a, b)| a != b)
        );
    }
    // Every leader epoch moved past 0 where leadership changed.
    let epochs: Vec<i32> = (0..PARTITIONS)
        .map(|p| k.cluster().leader(topic, p).epoch)
        .collect();
    assert!(epochs.iter().any(|e| *e >= 1), "{epochs:?}");
}

#[test]
fn consumer_group_consumes_through_moves_and_commits_survive_a_coordinator_move() {
    let k = cluster();
    let topic = "vc-group";
    let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", k.bootstrap())
        .set("enable.idempotence", "true")
        .create_with_context(Deliveries::default())
        .unwrap();
    let produce = |from: u64, to: u64| {
        for i in from..to {
            let v = i.to_string();
            let p = i32::try_from(i % 6).unwrap();
            producer
                .send(BaseRecord::<str, str>::to(topic).partition(p).payload(&v))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        producer.flush(Duration::from_secs(60)).unwrap();
    };
    produce(0, 3000);
    let consumer = |id: &str| -> BaseConsumer {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", k.bootstrap())
            .set("group.id", "vc-group")
            .set("client.id", id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            .create()
            .unwrap();
        c.subscribe(&[topic]).unwrap();
        c
    };
    let c = consumer("first");
    let mut seen = std::collections::BTreeSet::new();
    let mut take = |c: &BaseConsumer, until: usize, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.len() < until {
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {until} consumed",
                seen.len()
            );
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                let m = m.unwrap();
                let v: u64 = std::str::from_utf8(m.payload().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                seen.insert(v);
            }
        }
    };
    eprintln!("produced 3000");
    take(&c, 1500, "before the moves");
    eprintln!("consumed 1500");
    c.commit_consumer_state(CommitMode::Sync).unwrap();
    let first = c.position().unwrap();

    // Leaders move and the coordinator moves while the group consumes.
    k.cluster()
        .move_all(1, Some(3), &k.broker().partition_ends())
        .unwrap();
    k.set_coordinator(2).unwrap();
    eprintln!("moved leaders and the coordinator");
    produce(3000, 6000);
    eprintln!("produced 6000");
    take(&c, 6000, "after the moves");
    eprintln!("consumed 6000");
    c.commit_consumer_state(CommitMode::Sync).unwrap();
    let committed = c.committed(Duration::from_secs(10)).unwrap();
    let mut total = 0;
    for e in committed.elements() {
        if let Offset::Offset(o) = e.offset() {
            total += o;
        }
    }
    assert_eq!(
        total, 6000,
        "committed after the coordinator moved: {committed:?}"
    );
    eprintln!("committed 6000; closing the first member");
    leave(c);
    eprintln!("left");

    // The coordinator's broker goes down: it moves again, and a new
    // member of the group starts from the committed offsets (nothing
    // left to read until more is produced).
    k.broker_down(2).unwrap();
    assert_ne!(k.cluster().coordinator(), 2);
    eprintln!("broker 2 down");
    let c2 = consumer("second");
    produce(6000, 6600);
    let mut fresh = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while fresh.len() < 600 {
        assert!(
            Instant::now() < deadline,
            "second member: {} of 600",
            fresh.len()
        );
        if let Some(m) = c2.poll(Duration::from_millis(100)) {
            // Connects to the down broker (it is in bootstrap.servers) are
            // refused, and librdkafka reports that through poll.
            let m = match m {
                Err(rdkafka::error::KafkaError::MessageConsumption(
                    rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure,
                )) => continue,
                other => other.unwrap(),
            };
            let v: u64 = std::str::from_utf8(m.payload().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            assert!(v >= 6000, "record {v} was committed before and read again");
            fresh.insert(v);
        }
    }
    assert!(first.count() > 0);
}
