package gregor.compat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Transactions and exactly-once with the stock Java kafka-clients, driven by
 * compat-tests/python/test_txn_java.py through compat-tests/java/txn.sh.
 *
 * <p>Usage: {@code Transactions BOOTSTRAP SCENARIO PREFIX}. Every scenario
 * prints JSON lines on stdout: what it did ({@code txn} events with the
 * values it sent and whether it committed or aborted) and what it then saw
 * ({@code read} events: every record as [offset, value] per partition, and
 * the end offsets, under read_committed and read_uncommitted). The Python
 * side computes the expected logs (offsets included: every transaction
 * leaves one control record per partition it wrote) and asserts them
 * exactly. Exits non-zero, with a {@code FAIL} line on stderr, when a call
 * fails or a wait runs out.
 *
 * <p>Scenarios: {@code interleaved}, {@code fencing}, {@code ctp}
 * (consume-transform-produce), {@code crash-begin} / {@code crash-finish}
 * (the halves around a kill -9 of the broker), {@code crash-read} (that
 * topic read again, after further restarts), {@code open} (a transaction
 * held open until stdin says {@code commit}).
 */
public final class Transactions {
    static final int TIMEOUT_MS = 30_000;
    static final int PARTITIONS = 3;

    private final String bootstrap;
    private final String prefix;

    Transactions(String bootstrap, String prefix) {
        this.bootstrap = bootstrap;
        this.prefix = prefix;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: Transactions BOOTSTRAP interleaved|fencing|ctp|crash-begin|crash-finish|crash-read|open PREFIX");
            System.exit(2);
        }
        Transactions t = new Transactions(args[0], args[2]);
        try {
            switch (args[1]) {
                case "interleaved" -> t.interleaved();
                case "fencing" -> t.fencing();
                case "ctp" -> t.consumeTransformProduce();
                case "crash-begin" -> t.crashBegin();
                case "crash-finish" -> t.crashFinish();
                case "crash-read" -> t.readBoth(t.topic("crash"), PARTITIONS, "reread");
                case "open" -> t.open();
                default -> {
                    System.err.println("unknown scenario " + args[1]);
                    System.exit(2);
                }
            }
        } catch (Throwable e) {
            System.err.println("FAIL " + args[1] + ": " + e);
            e.printStackTrace();
            System.err.flush();
            // a producer's or consumer's threads must not keep a failed run alive
            Runtime.getRuntime().halt(1);
        }
        Json.emit(Json.event("done").str("scenario", args[1]));
        System.exit(0);
    }

    // ---------------------------------------------------------------- clients

    Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, TIMEOUT_MS);
        return Admin.create(p);
    }

    KafkaProducer<String, String> producer(String txnId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, TIMEOUT_MS);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, TIMEOUT_MS);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        return new KafkaProducer<>(p);
    }

    /** A plain (idempotent, non-transactional) producer. */
    KafkaProducer<String, String> plainProducer() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, TIMEOUT_MS);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, TIMEOUT_MS);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        return new KafkaProducer<>(p);
    }

    KafkaConsumer<String, String> consumer(String isolation, String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, TIMEOUT_MS);
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        return new KafkaConsumer<>(p);
    }

    String topic(String name) {
        return prefix + name;
    }

    /** CreateTopics, then waits until Metadata shows every partition with a leader. */
    void createTopic(Admin admin, String topic, int partitions) throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1)))
                .all().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
        long deadline = System.currentTimeMillis() + TIMEOUT_MS;
        while (true) {
            try {
                TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames()
                        .get(TIMEOUT_MS, TimeUnit.MILLISECONDS).get(topic);
                if (d.partitions().size() == partitions
                        && d.partitions().stream().allMatch(pi -> pi.leader() != null)) {
                    return;
                }
            } catch (ExecutionException e) {
                // Kafka propagates metadata asynchronously: the topic may be unknown for a moment
            }
            if (System.currentTimeMillis() > deadline) {
                throw new IllegalStateException("topic " + topic + " has no leader for every partition after "
                        + TIMEOUT_MS + " ms");
            }
            Thread.sleep(100);
        }
    }

    static List<TopicPartition> partitions(String topic, int n) {
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < n; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        return tps;
    }

    // ------------------------------------------------------------- transactions

    /**
     * Sends {@code values} (partition to values) inside the producer's open
     * transaction, waits for every acknowledgement and prints a {@code sent}
     * event; returns the values as sent.
     */
    static Map<Integer, List<String>> send(KafkaProducer<String, String> producer, String topic,
            Map<Integer, List<String>> values) throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (Map.Entry<Integer, List<String>> e : values.entrySet()) {
            for (String v : e.getValue()) {
                fs.add(producer.send(new ProducerRecord<>(topic, e.getKey(), "k-" + v, v)));
            }
        }
        producer.flush();
        for (Future<RecordMetadata> f : fs) {
            f.get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
        }
        return values;
    }

    static Json txnEvent(String name, String outcome, Map<Integer, List<String>> values) {
        return Json.event("txn").str("name", name).str("outcome", outcome).raw("values", valuesJson(values));
    }

    static String valuesJson(Map<Integer, List<String>> values) {
        StringBuilder sb = new StringBuilder("{");
        boolean first = true;
        for (Map.Entry<Integer, List<String>> e : new TreeMap<>(values).entrySet()) {
            if (!first) {
                sb.append(',');
            }
            first = false;
            Json.quote(sb, Integer.toString(e.getKey()));
            sb.append(':');
            sb.append('[');
            for (int i = 0; i < e.getValue().size(); i++) {
                if (i > 0) {
                    sb.append(',');
                }
                Json.quote(sb, e.getValue().get(i));
            }
            sb.append(']');
        }
        return sb.append('}').toString();
    }

    /** Name of the exception (the cause of an ExecutionException), or null. */
    static String errorName(Throwable e) {
        if (e == null) {
            return null;
        }
        Throwable c = (e instanceof ExecutionException && e.getCause() != null) ? e.getCause() : e;
        return c.getClass().getName();
    }

    // ------------------------------------------------------------------ reading

    /**
     * Reads a topic from the beginning to its end offsets under one isolation
     * level (assign, no group) and prints a {@code read} event: per partition
     * the records as [offset, value], the end offsets and the final positions.
     */
    void read(String topic, int n, String isolation, String label) throws Exception {
        try (KafkaConsumer<String, String> c = consumer(isolation, null)) {
            List<TopicPartition> tps = partitions(topic, n);
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofMillis(TIMEOUT_MS));
            Map<Integer, List<String>> got = new TreeMap<>();
            for (TopicPartition tp : tps) {
                got.put(tp.partition(), new ArrayList<>());
            }
            long deadline = System.currentTimeMillis() + TIMEOUT_MS;
            while (true) {
                boolean done = true;
                for (TopicPartition tp : tps) {
                    if (c.position(tp) < end.get(tp)) {
                        done = false;
                    }
                }
                if (done) {
                    break;
                }
                if (System.currentTimeMillis() > deadline) {
                    Map<Integer, Long> pos = new TreeMap<>();
                    for (TopicPartition tp : tps) {
                        pos.put(tp.partition(), c.position(tp));
                    }
                    throw new IllegalStateException(isolation + " consumer of " + topic + " did not reach the end offsets "
                            + end + " within " + TIMEOUT_MS + " ms: positions " + pos + ", records so far " + got);
                }
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    got.get(r.partition()).add("[" + r.offset() + "," + quoted(r.value()) + "]");
                }
            }
            // nothing may lie beyond the end offsets read at the start
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                got.get(r.partition()).add("[" + r.offset() + "," + quoted(r.value()) + "]");
            }
            StringBuilder recs = new StringBuilder("{");
            Map<String, Long> ends = new TreeMap<>();
            Map<String, Long> positions = new TreeMap<>();
            boolean first = true;
            for (TopicPartition tp : tps) {
                if (!first) {
                    recs.append(',');
                }
                first = false;
                Json.quote(recs, Integer.toString(tp.partition()));
                recs.append(":[").append(String.join(",", got.get(tp.partition()))).append(']');
                ends.put(Integer.toString(tp.partition()), end.get(tp));
                positions.put(Integer.toString(tp.partition()), c.position(tp));
            }
            recs.append('}');
            Json.emit(Json.event("read").str("label", label).str("topic", topic).str("isolation", isolation)
                    .raw("records", recs.toString()).numMap("end", ends).numMap("position", positions));
        }
    }

    /** endOffsets of a topic under one isolation level, as a {@code end} event. */
    void endOffsets(String topic, int n, String isolation, String label) {
        try (KafkaConsumer<String, String> c = consumer(isolation, null)) {
            List<TopicPartition> tps = partitions(topic, n);
            c.assign(tps); // else the client warns that it drops the offsets it fetched
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofMillis(TIMEOUT_MS));
            Map<String, Long> m = new TreeMap<>();
            end.forEach((tp, o) -> m.put(Integer.toString(tp.partition()), o));
            Json.emit(Json.event("end").str("label", label).str("isolation", isolation).numMap("end", m));
        }
    }

    static String quoted(String s) {
        StringBuilder sb = new StringBuilder();
        Json.quote(sb, s);
        return sb.toString();
    }

    void readBoth(String topic, int n, String label) throws Exception {
        read(topic, n, "read_committed", label);
        read(topic, n, "read_uncommitted", label);
    }

    // ---------------------------------------------------------------- scenarios

    /** The outcome of each transaction in {@link #interleaved}. */
    static final String[] PLAN = {"commit", "abort", "commit", "commit", "abort", "abort", "commit", "commit"};

    /**
     * One transactional producer, eight transactions over a 3-partition topic,
     * commits and aborts interleaved; each writes to two or three partitions,
     * one to three records each. Before the last commit the transaction is
     * left open while end offsets are read (LSO vs high watermark).
     */
    void interleaved() throws Exception {
        String topic = topic("interleaved");
        try (Admin admin = admin()) {
            createTopic(admin, topic, PARTITIONS);
        }
        try (KafkaProducer<String, String> producer = producer(prefix + "interleaved-txn")) {
            producer.initTransactions();
            for (int t = 0; t < PLAN.length; t++) {
                Map<Integer, List<String>> values = new TreeMap<>();
                for (int p = 0; p < PARTITIONS; p++) {
                    if ((t + p) % 4 == 3) {
                        continue; // some transactions skip a partition
                    }
                    List<String> vs = new ArrayList<>();
                    for (int i = 0; i < 1 + (t * 7 + p) % 3; i++) {
                        vs.add("t" + t + "-p" + p + "-" + i);
                    }
                    values.put(p, vs);
                }
                producer.beginTransaction();
                send(producer, topic, values);
                if (t == PLAN.length - 1) {
                    // acknowledged but not committed: the LSO stays at the transaction's first offset
                    endOffsets(topic, PARTITIONS, "read_committed", "open");
                    endOffsets(topic, PARTITIONS, "read_uncommitted", "open");
                    // a read_committed fetch stops at the LSO: none of the open records
                    read(topic, PARTITIONS, "read_committed", "open");
                }
                if (PLAN[t].equals("commit")) {
                    producer.commitTransaction();
                } else {
                    producer.abortTransaction();
                }
                Json.emit(txnEvent("t" + t, PLAN[t], values));
            }
        }
        readBoth(topic, PARTITIONS, "final");
    }

    /**
     * Zombie fencing: A opens a transaction and writes; B with the same
     * transactional.id initTransactions (fencing A and aborting its
     * transaction); A's next send and its commit fail; B commits.
     */
    void fencing() throws Exception {
        String topic = topic("fencing");
        String txnId = prefix + "fencing-txn";
        try (Admin admin = admin()) {
            createTopic(admin, topic, PARTITIONS);
        }
        KafkaProducer<String, String> a = producer(txnId);
        a.initTransactions();
        a.beginTransaction();
        Map<Integer, List<String>> aValues = new TreeMap<>(Map.of(0, List.of("a-p0-0", "a-p0-1"), 1, List.of("a-p1-0")));
        send(a, topic, aValues);
        Json.emit(txnEvent("a", "open", aValues));

        KafkaProducer<String, String> b = producer(txnId);
        b.initTransactions();
        Json.emit(Json.event("b-initialized"));

        // A, the zombie, tries to go on: to a partition already in its
        // transaction and to a new one
        String sendError = null;
        String sendMessage = null;
        try {
            a.send(new ProducerRecord<>(topic, 0, "k", "a-late-p0")).get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            sendError = errorName(e);
            sendMessage = e.getCause().getMessage();
        } catch (Exception e) {
            sendError = errorName(e);
            sendMessage = e.getMessage();
        }
        String commitError = null;
        String commitMessage = null;
        try {
            a.commitTransaction();
        } catch (Exception e) {
            commitError = errorName(e);
            commitMessage = e.getMessage();
        }
        Json.emit(Json.event("zombie").str("send_error", sendError).str("send_message", sendMessage)
                .str("commit_error", commitError).str("commit_message", commitMessage));
        a.close(Duration.ofMillis(TIMEOUT_MS));

        b.beginTransaction();
        Map<Integer, List<String>> bValues = new TreeMap<>(Map.of(0, List.of("b-p0-0"), 2, List.of("b-p2-0", "b-p2-1")));
        send(b, topic, bValues);
        b.commitTransaction();
        Json.emit(txnEvent("b", "commit", bValues));
        b.close(Duration.ofMillis(TIMEOUT_MS));
        readBoth(topic, PARTITIONS, "final");
    }

    static final int CTP_PER_PARTITION = 20;
    static final int CTP_ABORTED_BATCH = 2;

    /**
     * consume-transform-produce: a group consumer (read_committed, no auto
     * commit) and a transactional producer committing the consumed offsets
     * with sendOffsetsToTransaction; the third batch is aborted, the consumer
     * seeks back to the committed offsets and the batch is processed again.
     */
    void consumeTransformProduce() throws Exception {
        String in = topic("ctp-in");
        String out = topic("ctp-out");
        String group = prefix + "ctp-group";
        List<TopicPartition> inTps = partitions(in, PARTITIONS);
        try (Admin admin = admin()) {
            createTopic(admin, in, PARTITIONS);
            createTopic(admin, out, PARTITIONS);
        }
        Map<Integer, List<String>> input = new TreeMap<>();
        try (KafkaProducer<String, String> p = plainProducer()) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int part = 0; part < PARTITIONS; part++) {
                List<String> vs = new ArrayList<>();
                for (int i = 0; i < CTP_PER_PARTITION; i++) {
                    String v = "in-p" + part + "-" + i;
                    vs.add(v);
                    fs.add(p.send(new ProducerRecord<>(in, part, "k" + i, v)));
                }
                input.put(part, vs);
            }
            p.flush();
            for (Future<RecordMetadata> f : fs) {
                f.get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
            }
        }
        Json.emit(Json.event("input").str("topic", in).raw("values", valuesJson(input)));

        try (KafkaConsumer<String, String> c = consumerInGroup(group);
                KafkaProducer<String, String> producer = producer(prefix + "ctp-txn")) {
            producer.initTransactions();
            c.subscribe(List.of(in));
            Map<TopicPartition, Long> end;
            try (KafkaConsumer<String, String> probe = consumer("read_committed", null)) {
                probe.assign(inTps);
                end = probe.endOffsets(inTps, Duration.ofMillis(TIMEOUT_MS));
            }
            Map<TopicPartition, Long> committed = new HashMap<>();
            int batch = 0;
            long deadline = System.currentTimeMillis() + 2L * TIMEOUT_MS;
            while (!reached(committed, end)) {
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("consume-transform-produce did not commit up to " + end
                            + " within " + 2 * TIMEOUT_MS + " ms: committed " + committed);
                }
                ConsumerRecords<String, String> records = c.poll(Duration.ofMillis(200));
                if (records.isEmpty()) {
                    continue;
                }
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                Map<Integer, List<String>> sent = new TreeMap<>();
                List<Future<RecordMetadata>> fs = new ArrayList<>();
                for (ConsumerRecord<String, String> r : records) {
                    String v = "out:" + r.value();
                    // same partition number as the input, so order per partition is checkable
                    fs.add(producer.send(new ProducerRecord<>(out, r.partition(), r.key(), v)));
                    sent.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(v);
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                producer.sendOffsetsToTransaction(offsets, c.groupMetadata());
                producer.flush();
                for (Future<RecordMetadata> f : fs) {
                    f.get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
                }
                String outcome;
                if (batch == CTP_ABORTED_BATCH) {
                    producer.abortTransaction();
                    outcome = "abort";
                    // redo from the last committed offsets (none yet: from the beginning)
                    Set<TopicPartition> assigned = c.assignment();
                    Map<TopicPartition, OffsetAndMetadata> last = c.committed(assigned, Duration.ofMillis(TIMEOUT_MS));
                    for (TopicPartition tp : assigned) {
                        OffsetAndMetadata om = last.get(tp);
                        if (om == null) {
                            c.seekToBeginning(List.of(tp));
                        } else {
                            c.seek(tp, om.offset());
                        }
                    }
                } else {
                    producer.commitTransaction();
                    outcome = "commit";
                    offsets.forEach((tp, om) -> committed.put(tp, om.offset()));
                }
                Map<String, Long> offs = new TreeMap<>();
                offsets.forEach((tp, om) -> offs.put(Integer.toString(tp.partition()), om.offset()));
                Json.emit(txnEvent("batch" + batch, outcome, sent).numMap("offsets", offs));
                batch++;
            }
            Json.emit(Json.event("ctp-end").num("batches", batch));
        }
        readBoth(out, PARTITIONS, "output");
        try (Admin admin = admin()) {
            Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
            Map<String, Long> m = new TreeMap<>();
            offsets.forEach((tp, om) -> m.put(tp.topic() + ":" + tp.partition(), om == null ? -1 : om.offset()));
            Json.emit(Json.event("group-offsets").str("group", group).numMap("offsets", m));
        }
        endOffsets(in, PARTITIONS, "read_uncommitted", "input");
    }

    KafkaConsumer<String, String> consumerInGroup(String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 8);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, TIMEOUT_MS);
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        return new KafkaConsumer<>(p);
    }

    static boolean reached(Map<TopicPartition, Long> committed, Map<TopicPartition, Long> end) {
        for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
            if (committed.getOrDefault(e.getKey(), 0L) < e.getValue()) {
                return false;
            }
        }
        return true;
    }

    /**
     * First half of the crash scenario: T1 committed; T2 written to two
     * partitions and acknowledged (acks=all) but not committed. Then the
     * process halts without closing anything (a crashed application), leaving
     * T2 open in the broker.
     */
    void crashBegin() throws Exception {
        String topic = topic("crash");
        try (Admin admin = admin()) {
            createTopic(admin, topic, PARTITIONS);
        }
        KafkaProducer<String, String> p = producer(prefix + "crash-txn");
        p.initTransactions();
        p.beginTransaction();
        Map<Integer, List<String>> t1 = new TreeMap<>(Map.of(0, List.of("t1-p0-0", "t1-p0-1"), 1, List.of("t1-p1-0"),
                2, List.of("t1-p2-0")));
        send(p, topic, t1);
        p.commitTransaction();
        Json.emit(txnEvent("t1", "commit", t1));
        p.beginTransaction();
        Map<Integer, List<String>> t2 = new TreeMap<>(Map.of(0, List.of("t2-p0-0", "t2-p0-1"), 1, List.of("t2-p1-0")));
        send(p, topic, t2);
        Json.emit(txnEvent("t2", "open", t2));
        Runtime.getRuntime().halt(0);
    }

    /**
     * Second half, after the broker's kill -9 and restart: a new producer with
     * the same transactional.id (its initTransactions aborts T2) commits T3.
     */
    void crashFinish() throws Exception {
        String topic = topic("crash");
        try (KafkaProducer<String, String> p = producer(prefix + "crash-txn")) {
            p.initTransactions();
            Json.emit(Json.event("initialized"));
            p.beginTransaction();
            Map<Integer, List<String>> t3 = new TreeMap<>(Map.of(0, List.of("t3-p0-0"), 2, List.of("t3-p2-0", "t3-p2-1")));
            send(p, topic, t3);
            p.commitTransaction();
            Json.emit(txnEvent("t3", "commit", t3));
        }
        readBoth(topic, PARTITIONS, "final");
    }

    /**
     * A transaction held open for the transactions tool: written to
     * partitions 0 and 1 and acknowledged; committed when stdin says
     * "commit"; the process exits at end of stdin.
     */
    void open() throws Exception {
        String topic = topic("open");
        String txnId = prefix + "open-txn";
        try (Admin admin = admin()) {
            createTopic(admin, topic, PARTITIONS);
        }
        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (KafkaProducer<String, String> p = producer(txnId)) {
            p.initTransactions();
            p.beginTransaction();
            Map<Integer, List<String>> values = new TreeMap<>(Map.of(0, List.of("o-p0-0", "o-p0-1"), 1, List.of("o-p1-0")));
            send(p, topic, values);
            Json.emit(txnEvent("open", "open", values).str("topic", topic).str("transactional_id", txnId));
            String line = stdin.readLine();
            if (!"commit".equals(line)) {
                throw new IllegalStateException("expected 'commit' on stdin, got " + line);
            }
            p.commitTransaction();
            Json.emit(txnEvent("open", "commit", values));
            while (stdin.readLine() != null) {
                // held until the test is done with the tool
            }
        }
    }
}
