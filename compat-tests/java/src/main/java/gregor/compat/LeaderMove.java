package gregor.compat;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The leader-move scenario of issue 11 with the stock Java kafka-clients,
 * against Gregor's virtual cluster (gregor serve --virtual-brokers 3
 * --admin-listen ...), driven through compat-tests/java/leader-move.sh by
 * compat-tests/python/test_leader_move.py.
 *
 * <p>Usage: {@code LeaderMove BOOTSTRAP ADMIN_URL PREFIX} (ADMIN_URL like
 * {@code http://127.0.0.1:PA}; BOOTSTRAP one address or a comma list).
 * Records: env LEADER_MOVE_RECORDS (20000).
 *
 * <p>An idempotent producer (enable.idempotence=true, acks=all) writes N
 * records to a 6-partition topic whose partitions are led by brokers 1-3:
 * key {@code key-NN} (60 keys, the default partitioner keeps each on one
 * partition), value the key's sequence number 0, 1, 2, ... . At 1/8, 2/8,
 * ... 7/8 of the sends the program itself calls the admin API: connections
 * cut after Produce is processed (POST /faults/close count 3, twice), every
 * partition of broker 1 to broker 2, one partition to another broker,
 * broker 3 down and up again, partitions moved back to broker 3, broker 2's
 * partitions spread over the others. After each call it checks /topics and
 * /cluster against the spec (the moved partitions' leader, leader epoch +1,
 * the others unchanged) and Metadata (Admin.describeTopics) against /topics.
 *
 * <p>Meanwhile a consumer in group PREFIX...-live consumes and commits after
 * every poll: it must keep going through the moves (per key no gap; a
 * redelivery after a rebalance is counted, not failed), reach the end, and
 * its committed offsets must equal the end offsets. Then a new group reads
 * everything: per key exactly 0..n-1 in order, no duplicates, nothing
 * missing, each key on one partition; the end offsets sum to N (no
 * duplicate reached the log); the producer saw no error.
 *
 * <p>Prints JSON lines; the last is {@code {"event":"summary","ok":...}}.
 * Exits 1 when a check failed (the summary lists them in "failures").
 */
public final class LeaderMove {
    static final int PARTITIONS = 6;
    static final int KEYS = 60;
    static final int TIMEOUT_MS = 30_000;
    static final int STEPS = 8;

    final String bootstrap;
    final String adminUrl;
    final boolean plain;  // ADMIN_URL "-": no admin API, produce/consume only
    final String prefix;
    final int n;
    final String topic;
    final long t0 = System.currentTimeMillis();
    final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    final List<String> failures = new ArrayList<>();
    int moves = 0;
    int faults = 0;

    LeaderMove(String bootstrap, String adminUrl, String prefix, int n) {
        this.bootstrap = bootstrap;
        this.plain = adminUrl.equals("-");
        this.adminUrl = adminUrl.startsWith("http") ? adminUrl.replaceAll("/+$", "") : "http://" + adminUrl;
        this.prefix = prefix;
        this.n = n;
        this.topic = prefix + "leader-move";
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: LeaderMove BOOTSTRAP ADMIN_URL PREFIX");
            System.exit(2);
        }
        String env = System.getenv("LEADER_MOVE_RECORDS");
        int n = env == null || env.isEmpty() ? 20_000 : Integer.parseInt(env);
        LeaderMove m = new LeaderMove(args[0], args[1], args[2], n);
        boolean ok;
        try {
            ok = m.run();
        } catch (Throwable e) {
            System.err.println("FAIL leader-move: " + e);
            e.printStackTrace();
            m.failures.add("exception: " + e);
            Json.emit(Json.event("summary").bool("ok", false).strs("failures", m.failures)
                    .num("elapsed_ms", System.currentTimeMillis() - m.t0));
            System.err.flush();
            Runtime.getRuntime().halt(1);
            return;
        }
        System.exit(ok ? 0 : 1);
    }

    void check(boolean cond, String what) {
        if (!cond) {
            failures.add(what);
            System.err.println("FAIL " + what);
            Json.emit(Json.event("check_failed").str("what", what));
        }
    }

    long ms() {
        return System.currentTimeMillis() - t0;
    }

    // ------------------------------------------------------------ admin HTTP

    Object http(String method, String path, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(adminUrl + path)).timeout(Duration.ofSeconds(10));
        if (body != null) {
            b.header("content-type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(body));
        } else {
            b.method(method, HttpRequest.BodyPublishers.noBody());
        }
        HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() / 100 != 2) {
            throw new IllegalStateException(method + " " + path + " " + (body == null ? "" : body + " ") + "-> HTTP "
                    + r.statusCode() + ": " + r.body());
        }
        String s = r.body().trim();
        return s.isEmpty() ? null : MiniJson.parse(s);
    }

    /** POST, printing an "admin" event with the request and the answer. */
    Object post(String path, String body) throws Exception {
        Object res = http("POST", path, body);
        Json.emit(Json.event("admin").num("t_ms", ms()).str("request", "POST " + path).raw("body", body == null ? "null" : body)
                .raw("response", res == null ? "null" : MiniJson.write(res)));
        return res;
    }

    /** Partition -> [leader, leader_epoch] of our topic from GET /topics. */
    @SuppressWarnings("unchecked")
    Map<Integer, long[]> leaders() throws Exception {
        List<Object> topics = (List<Object>) http("GET", "/topics", null);
        for (Object o : topics) {
            Map<String, Object> t = (Map<String, Object>) o;
            if (topic.equals(t.get("name"))) {
                Map<Integer, long[]> out = new TreeMap<>();
                for (Object po : (List<Object>) t.get("partitions")) {
                    Map<String, Object> p = (Map<String, Object>) po;
                    out.put(((Number) p.get("partition")).intValue(), new long[] {
                        ((Number) p.get("leader")).longValue(), ((Number) p.get("leader_epoch")).longValue()});
                }
                return out;
            }
        }
        throw new IllegalStateException("GET /topics does not list " + topic);
    }

    /** Broker id -> up, from GET /cluster. */
    @SuppressWarnings("unchecked")
    Map<Integer, Boolean> brokersUp() throws Exception {
        Map<String, Object> c = (Map<String, Object>) http("GET", "/cluster", null);
        Map<Integer, Boolean> out = new TreeMap<>();
        for (Object o : (List<Object>) c.get("brokers")) {
            Map<String, Object> b = (Map<String, Object>) o;
            out.put(((Number) b.get("id")).intValue(), Boolean.TRUE.equals(b.get("up")));
        }
        return out;
    }

    static String leaderJson(Map<Integer, long[]> l) {
        StringBuilder sb = new StringBuilder("{");
        for (Map.Entry<Integer, long[]> e : l.entrySet()) {
            if (sb.length() > 1) {
                sb.append(',');
            }
            sb.append('"').append(e.getKey()).append("\":[").append(e.getValue()[0]).append(',')
                    .append(e.getValue()[1]).append(']');
        }
        return sb.append('}').toString();
    }

    /**
     * Checks the leaders after a move against the spec: partitions in
     * {@code moved} have a new leader (in {@code allowed}, or exactly
     * {@code expect.get(p)} when given) and epoch + 1; the others are unchanged.
     */
    void checkMove(String what, Map<Integer, long[]> before, Map<Integer, long[]> after, Set<Integer> moved,
            Map<Integer, Integer> expect, Set<Integer> allowed) {
        for (int p = 0; p < PARTITIONS; p++) {
            long[] b = before.get(p);
            long[] a = after.get(p);
            if (moved.contains(p)) {
                if (expect != null && expect.containsKey(p)) {
                    check(a[0] == expect.get(p), what + ": partition " + p + " leader " + a[0] + ", expected " + expect.get(p));
                } else {
                    check(a[0] != b[0] && allowed.contains((int) a[0]),
                            what + ": partition " + p + " leader " + b[0] + " -> " + a[0] + ", expected one of " + allowed);
                }
                check(a[1] == b[1] + 1, what + ": partition " + p + " leader epoch " + b[1] + " -> " + a[1] + ", expected +1");
            } else {
                check(a[0] == b[0] && a[1] == b[1], what + ": partition " + p + " not moved but [leader,epoch] ["
                        + b[0] + "," + b[1] + "] -> [" + a[0] + "," + a[1] + "]");
            }
        }
    }

    /**
     * The leaders as the clients see them must be those /topics names. Admin.describeTopics
     * asks DescribeTopicPartitions (API 75) when the broker offers it, Metadata otherwise.
     */
    void checkMetadata(Admin admin, String what, Map<Integer, long[]> expect) throws Exception {
        long deadline = System.currentTimeMillis() + 2_000;
        Map<Integer, Integer> seen = new TreeMap<>();
        while (true) {
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get(TIMEOUT_MS, TimeUnit.MILLISECONDS)
                    .get(topic);
            seen.clear();
            boolean same = true;
            for (TopicPartitionInfo pi : d.partitions()) {
                int leader = pi.leader() == null ? -1 : pi.leader().id();
                seen.put(pi.partition(), leader);
                same &= leader == expect.get(pi.partition())[0];
            }
            if (same) {
                return;
            }
            if (System.currentTimeMillis() > deadline) {
                check(false, what + ": Admin.describeTopics (DescribeTopicPartitions) leaders " + seen + " differ from GET /topics " + leaderJson(expect));
                return;
            }
            Thread.sleep(100);
        }
    }

    static Set<Integer> ledBy(Map<Integer, long[]> l, long broker) {
        Set<Integer> s = new TreeSet<>();
        l.forEach((p, v) -> {
            if (v[0] == broker) {
                s.add(p);
            }
        });
        return s;
    }

    /** Step k (1..7) of the schedule: the admin calls, then the checks. */
    void step(int k, Admin admin, LiveConsumer live, long sent) throws Exception {
        if (plain) {
            Json.emit(Json.event("step").num("step", k).str("what", "none (no admin API)").num("t_ms", ms())
                    .num("sent", sent).num("live_consumed", live.consumed.get()));
            return;
        }
        Map<Integer, long[]> before = leaders();
        Map<Integer, long[]> after;
        String what;
        switch (k) {
            case 1, 5 -> {
                what = "close Produce x3";
                post("/faults/close", "{\"api\":\"Produce\",\"count\":3}");
                faults++;
                after = leaders();
                checkMove(what, before, after, Set.of(), null, Set.of());
            }
            case 2 -> {
                what = "leaders from 1 to 2";
                post("/leaders", "{\"from\":1,\"to\":2}");
                moves++;
                after = leaders();
                checkMove(what, before, after, ledBy(before, 1), Map.of(), Set.of(2));
            }
            case 3 -> {
                // one partition of broker 2 to broker 1
                int p = ledBy(before, 2).stream().findFirst().orElse(0);
                long to = 1;
                what = "partition " + p + " to " + to;
                post("/leaders", "{\"topic\":\"" + topic + "\",\"partition\":" + p + ",\"leader\":" + to + "}");
                moves++;
                after = leaders();
                checkMove(what, before, after, Set.of(p), Map.of(p, (int) to), Set.of());
            }
            case 4 -> {
                what = "broker 3 down";
                post("/brokers/3/down", null);
                moves++;
                after = leaders();
                checkMove(what, before, after, ledBy(before, 3), null, Set.of(1, 2));
                Map<Integer, Boolean> up = brokersUp();
                check(Boolean.FALSE.equals(up.get(3)) && Boolean.TRUE.equals(up.get(1)) && Boolean.TRUE.equals(up.get(2)),
                        what + ": GET /cluster up flags " + up);
            }
            case 6 -> {
                what = "broker 3 up, two partitions to 3";
                post("/brokers/3/up", null);
                Map<Integer, long[]> mid = leaders();
                checkMove("broker 3 up", before, mid, Set.of(), null, Set.of());
                Map<Integer, Boolean> up = brokersUp();
                check(Boolean.TRUE.equals(up.get(3)), "broker 3 up: GET /cluster up flags " + up);
                Set<Integer> moved = new TreeSet<>();
                Map<Integer, Integer> expect = new HashMap<>();
                for (int p = 0; p < PARTITIONS && moved.size() < 2; p++) {
                    if (mid.get(p)[0] != 3) {
                        post("/leaders", "{\"topic\":\"" + topic + "\",\"partition\":" + p + ",\"leader\":3}");
                        moves++;
                        moved.add(p);
                        expect.put(p, 3);
                    }
                }
                after = leaders();
                checkMove(what, mid, after, moved, expect, Set.of());
            }
            case 7 -> {
                what = "leaders from 2 (spread)";
                post("/leaders", "{\"from\":2}");
                moves++;
                after = leaders();
                checkMove(what, before, after, ledBy(before, 2), null, Set.of(1, 3));
            }
            default -> throw new IllegalArgumentException("step " + k);
        }
        checkMetadata(admin, what, after);
        Json.emit(Json.event("step").num("step", k).str("what", what).num("t_ms", ms()).num("sent", sent)
                .num("live_consumed", live.consumed.get()).raw("leaders_before", leaderJson(before))
                .raw("leaders_after", leaderJson(after)));
    }

    // ------------------------------------------------------------- clients

    Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, TIMEOUT_MS);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        return Admin.create(p);
    }

    KafkaProducer<String, String> producer() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, prefix + "producer");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, TIMEOUT_MS);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 40_000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        return new KafkaProducer<>(p);
    }

    KafkaConsumer<String, String> consumer(String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, TIMEOUT_MS);
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        return new KafkaConsumer<>(p);
    }

    static String key(int k) {
        return String.format("key-%02d", k);
    }

    /** The group member that consumes and commits while the leaders move. */
    final class LiveConsumer extends Thread {
        final String group = prefix + "live";
        final AtomicLong consumed = new AtomicLong();
        final AtomicLong redelivered = new AtomicLong();
        final AtomicLong commits = new AtomicLong();
        final AtomicLong commitErrors = new AtomicLong();
        final AtomicLong rebalances = new AtomicLong();
        final ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();
        volatile Set<TopicPartition> assigned = Set.of();
        volatile Map<TopicPartition, Long> target;  // set by main: stop at these positions
        volatile boolean done;
        volatile Throwable died;
        volatile String lastCommitError;
        final Map<String, Long> last = new HashMap<>();

        LiveConsumer() {
            super("live-consumer");
            setDaemon(true);
        }

        @Override
        public void run() {
            try (KafkaConsumer<String, String> c = consumer(group)) {
                c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                    @Override
                    public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                    }

                    @Override
                    public void onPartitionsAssigned(Collection<TopicPartition> ps) {
                        rebalances.incrementAndGet();
                        assigned = new HashSet<>(c.assignment());
                    }
                });
                long deadline = Long.MAX_VALUE;
                while (true) {
                    ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(200));
                    for (ConsumerRecord<String, String> r : recs) {
                        long v = Long.parseLong(r.value());
                        long prev = last.getOrDefault(r.key(), -1L);
                        if (v == prev + 1) {
                            last.put(r.key(), v);
                        } else if (v <= prev) {
                            redelivered.incrementAndGet();
                        } else {
                            errors.add("live: key " + r.key() + " jumped from " + prev + " to " + v + " at "
                                    + r.partition() + "/" + r.offset());
                            last.put(r.key(), v);
                        }
                        consumed.incrementAndGet();
                    }
                    if (!recs.isEmpty()) {
                        try {
                            c.commitSync(Duration.ofSeconds(10));
                            commits.incrementAndGet();
                        } catch (Exception e) {
                            commitErrors.incrementAndGet();
                            lastCommitError = e.toString();
                        }
                    }
                    Map<TopicPartition, Long> t = target;
                    if (t != null) {
                        if (deadline == Long.MAX_VALUE) {
                            deadline = System.currentTimeMillis() + TIMEOUT_MS;
                        }
                        boolean caughtUp = c.assignment().containsAll(t.keySet());
                        for (Map.Entry<TopicPartition, Long> e : t.entrySet()) {
                            caughtUp &= caughtUp && c.position(e.getKey()) >= e.getValue();
                        }
                        if (caughtUp) {
                            c.commitSync(Duration.ofSeconds(10));
                            commits.incrementAndGet();
                            break;
                        }
                        if (System.currentTimeMillis() > deadline) {
                            errors.add("live: not at the end offsets " + t + " within " + TIMEOUT_MS + " ms");
                            break;
                        }
                    }
                }
            } catch (Throwable e) {
                died = e;
            } finally {
                done = true;
            }
        }
    }

    // ------------------------------------------------------------- scenario

    boolean run() throws Exception {
        Map<Integer, Boolean> up = plain ? Map.of() : brokersUp();
        Json.emit(Json.event("start").str("bootstrap", bootstrap).str("admin", plain ? null : adminUrl).str("topic", topic)
                .num("records", n).str("brokers", up.toString()));
        if (!plain) {
            check(up.size() >= 3 && up.values().stream().allMatch(b -> b), "GET /cluster: expected 3 live brokers, got " + up);
            http("DELETE", "/faults", null);
        }

        try (Admin admin = admin()) {
            admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
            if (!plain) {
                Map<Integer, long[]> initial = leaders();
                Set<Long> spread = new TreeSet<>();
                initial.values().forEach(v -> spread.add(v[0]));
                Json.emit(Json.event("topic").str("topic", topic).raw("leaders", leaderJson(initial)));
                check(spread.equals(Set.of(1L, 2L, 3L)), "new topic's partitions not led by brokers 1-3: " + leaderJson(initial));
                checkMetadata(admin, "created", initial);
            }

            LiveConsumer live = new LiveConsumer();
            live.start();
            long wait = System.currentTimeMillis() + TIMEOUT_MS;
            while (live.assigned.size() < PARTITIONS && !live.done && System.currentTimeMillis() < wait) {
                Thread.sleep(50);
            }
            check(live.assigned.size() == PARTITIONS, "live consumer assigned " + live.assigned + " within " + TIMEOUT_MS + " ms");
            Json.emit(Json.event("live_assigned").num("t_ms", ms()).num("partitions", live.assigned.size()));

            // ---- produce, with the schedule
            ConcurrentLinkedQueue<String> sendErrors = new ConcurrentLinkedQueue<>();
            Map<Integer, Integer> keyPartition = new HashMap<>();
            long[] nextSeq = new long[KEYS];
            AtomicLong acked = new AtomicLong();
            long produceStart = ms();
            double retries;
            double recordErrors;
            try (KafkaProducer<String, String> producer = producer()) {
                int stepAt = 1;
                for (int i = 0; i < n; i++) {
                    if (stepAt < STEPS && i == (long) n * stepAt / STEPS) {
                        step(stepAt++, admin, live, i);
                    }
                    int k = i % KEYS;
                    long seq = nextSeq[k]++;
                    producer.send(new ProducerRecord<>(topic, key(k), Long.toString(seq)), (md, e) -> {
                        if (e != null) {
                            sendErrors.add(key(k) + "=" + seq + ": " + e);
                        } else {
                            acked.incrementAndGet();
                            synchronized (keyPartition) {
                                Integer was = keyPartition.putIfAbsent(k, md.partition());
                                if (was != null && was != md.partition()) {
                                    sendErrors.add(key(k) + " acknowledged on partitions " + was + " and " + md.partition());
                                }
                            }
                        }
                    });
                    if (i % 100 == 99) {
                        Thread.sleep(15);  // spread the sends over a few seconds, so the moves meet traffic
                    }
                }
                producer.flush();
                retries = metric(producer.metrics(), "record-retry-total");
                recordErrors = metric(producer.metrics(), "record-error-total");
            }
            long produceMs = ms() - produceStart;
            Json.emit(Json.event("produced").num("records", n).num("acked", acked.get()).num("errors", sendErrors.size())
                    .num("retries", (long) retries).num("record_errors", (long) recordErrors).num("produce_ms", produceMs)
                    .strs("first_errors", sendErrors.stream().limit(5).toList()));
            check(sendErrors.isEmpty(), "producer errors: " + sendErrors.size() + ", first " + sendErrors.peek());
            check(acked.get() == n, "acknowledged " + acked.get() + " of " + n);

            Object faultsLeft = plain ? null : http("GET", "/faults", null);
            Json.emit(Json.event("faults_left").raw("faults", faultsLeft == null ? "null" : MiniJson.write(faultsLeft)));

            // ---- the log holds exactly N records
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) {
                tps.add(new TopicPartition(topic, p));
            }
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            tps.forEach(tp -> latest.put(tp, OffsetSpec.latest()));
            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> ends =
                    admin.listOffsets(latest).all().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
            Map<TopicPartition, Long> end = new TreeMap<>((a, b) -> Integer.compare(a.partition(), b.partition()));
            long logRecords = 0;
            for (TopicPartition tp : tps) {
                end.put(tp, ends.get(tp).offset());
                logRecords += ends.get(tp).offset();
            }
            Map<String, Long> endJson = new TreeMap<>();
            end.forEach((tp, o) -> endJson.put(Integer.toString(tp.partition()), o));
            Json.emit(Json.event("end_offsets").numMap("end", endJson).num("sum", logRecords));
            check(logRecords == n, "end offsets sum to " + logRecords + ", expected " + n + " (duplicates in the log?)");

            // ---- the live group reaches the end and commits it
            live.target = end;
            live.join(TIMEOUT_MS + 15_000);
            check(live.done, "live consumer still running");
            check(live.died == null, "live consumer died: " + live.died);
            live.errors.forEach(e -> check(false, e));
            Map<String, Long> committedJson = new TreeMap<>();
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(live.group)
                    .partitionsToOffsetAndMetadata().get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
            committed.forEach((tp, om) -> committedJson.put(Integer.toString(tp.partition()), om == null ? -1 : om.offset()));
            check(committedJson.equals(endJson), "live group committed " + committedJson + ", end offsets " + endJson);
            Json.emit(Json.event("live").num("consumed", live.consumed.get()).num("redelivered", live.redelivered.get())
                    .num("commits", live.commits.get()).num("commit_errors", live.commitErrors.get())
                    .str("last_commit_error", live.lastCommitError).num("assignments", live.rebalances.get())
                    .numMap("committed", committedJson));

            // ---- a new group reads everything
            Verify v = verify(end, logRecords);
            Json.emit(Json.event("verify").num("read", v.read).num("duplicates", v.duplicates).num("missing", v.missing)
                    .num("out_of_order", v.outOfOrder).num("keys", v.perKey.size()));

            boolean ok = failures.isEmpty();
            Json.emit(Json.event("summary").bool("ok", ok).str("client", "java kafka-clients "
                    + org.apache.kafka.common.utils.AppInfoParser.getVersion()).num("records", n).num("acked", acked.get())
                    .num("log_records", logRecords).num("read", v.read).num("duplicates", v.duplicates)
                    .num("missing", v.missing).num("out_of_order", v.outOfOrder).num("producer_errors", sendErrors.size())
                    .num("producer_retries", (long) retries).num("moves", moves).num("faults", faults)
                    .num("live_consumed", live.consumed.get()).num("live_redelivered", live.redelivered.get())
                    .num("live_commits", live.commits.get()).num("live_commit_errors", live.commitErrors.get())
                    .num("produce_ms", produceMs).num("elapsed_ms", ms()).strs("failures", failures));
            return ok;
        }
    }

    static double metric(Map<MetricName, ? extends Metric> ms, String name) {
        for (Map.Entry<MetricName, ? extends Metric> e : ms.entrySet()) {
            if (e.getKey().name().equals(name) && e.getKey().group().equals("producer-metrics")) {
                Object v = e.getValue().metricValue();
                return v instanceof Number num ? num.doubleValue() : -1;
            }
        }
        return -1;
    }

    static final class Verify {
        long read;
        long duplicates;
        long missing;
        long outOfOrder;
        final Map<String, List<Long>> perKey = new TreeMap<>();
    }

    Verify verify(Map<TopicPartition, Long> end, long total) throws Exception {
        Verify v = new Verify();
        Map<String, Integer> keyPart = new HashMap<>();
        try (KafkaConsumer<String, String> c = consumer(prefix + "verify")) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + TIMEOUT_MS;
            while (v.read < total && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    v.read++;
                    v.perKey.computeIfAbsent(r.key(), x -> new ArrayList<>()).add(Long.parseLong(r.value()));
                    Integer was = keyPart.putIfAbsent(r.key(), r.partition());
                    check(was == null || was == r.partition(), "key " + r.key() + " on partitions " + was + " and " + r.partition());
                }
            }
            c.commitSync(Duration.ofSeconds(10));
        }
        check(v.read == total, "verify group read " + v.read + " of " + total + " records");
        // per key: exactly 0..n-1 in order
        for (int k = 0; k < KEYS; k++) {
            String key = key(k);
            long expectN = n / KEYS + (k < n % KEYS ? 1 : 0);
            List<Long> seqs = v.perKey.getOrDefault(key, List.of());
            Set<Long> seen = new HashSet<>();
            long prev = -1;
            for (long s : seqs) {
                if (!seen.add(s)) {
                    v.duplicates++;
                } else if (s != prev + 1) {
                    v.outOfOrder++;
                }
                prev = Math.max(prev, s);
            }
            for (long s = 0; s < expectN; s++) {
                if (!seen.contains(s)) {
                    v.missing++;
                }
            }
            check(seqs.size() == expectN && seen.size() == expectN,
                    "key " + key + ": read " + seqs.size() + " records (" + seen.size() + " distinct), expected " + expectN);
        }
        check(v.duplicates == 0, "duplicates: " + v.duplicates);
        check(v.missing == 0, "missing: " + v.missing);
        check(v.outOfOrder == 0, "out of order: " + v.outOfOrder);
        return v;
    }

    // ------------------------------------------------------------- JSON in

    /** A small JSON reader for the admin API's answers (objects, arrays, strings, numbers, literals). */
    static final class MiniJson {
        private final String s;
        private int i;

        private MiniJson(String s) {
            this.s = s;
        }

        static Object parse(String s) {
            MiniJson p = new MiniJson(s);
            Object v = p.value();
            p.ws();
            if (p.i != s.length()) {
                throw new IllegalArgumentException("trailing data in JSON at " + p.i + ": " + s);
            }
            return v;
        }

        private void ws() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                i++;
            }
        }

        private Object value() {
            ws();
            char c = s.charAt(i);
            switch (c) {
                case '{' -> {
                    i++;
                    Map<String, Object> m = new LinkedHashMap<>();
                    ws();
                    if (s.charAt(i) == '}') {
                        i++;
                        return m;
                    }
                    while (true) {
                        ws();
                        String k = string();
                        ws();
                        expect(':');
                        m.put(k, value());
                        ws();
                        if (s.charAt(i) == ',') {
                            i++;
                        } else {
                            expect('}');
                            return m;
                        }
                    }
                }
                case '[' -> {
                    i++;
                    List<Object> l = new ArrayList<>();
                    ws();
                    if (s.charAt(i) == ']') {
                        i++;
                        return l;
                    }
                    while (true) {
                        l.add(value());
                        ws();
                        if (s.charAt(i) == ',') {
                            i++;
                        } else {
                            expect(']');
                            return l;
                        }
                    }
                }
                case '"' -> {
                    return string();
                }
                default -> {
                    if (s.startsWith("true", i)) {
                        i += 4;
                        return Boolean.TRUE;
                    }
                    if (s.startsWith("false", i)) {
                        i += 5;
                        return Boolean.FALSE;
                    }
                    if (s.startsWith("null", i)) {
                        i += 4;
                        return null;
                    }
                    int st = i;
                    while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
                        i++;
                    }
                    String num = s.substring(st, i);
                    if (num.isEmpty()) {
                        throw new IllegalArgumentException("bad JSON at " + st + ": " + s);
                    }
                    if (num.contains(".") || num.contains("e") || num.contains("E")) {
                        return Double.parseDouble(num);
                    }
                    return Long.parseLong(num);
                }
            }
        }

        private void expect(char c) {
            if (i >= s.length() || s.charAt(i) != c) {
                throw new IllegalArgumentException("expected '" + c + "' at " + i + " in JSON: " + s);
            }
            i++;
        }

        private String string() {
            expect('"');
            StringBuilder sb = new StringBuilder();
            while (true) {
                char c = s.charAt(i++);
                if (c == '"') {
                    return sb.toString();
                }
                if (c == '\\') {
                    char e = s.charAt(i++);
                    switch (e) {
                        case 'n' -> sb.append('\n');
                        case 't' -> sb.append('\t');
                        case 'r' -> sb.append('\r');
                        case 'b' -> sb.append('\b');
                        case 'f' -> sb.append('\f');
                        case 'u' -> {
                            sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                            i += 4;
                        }
                        default -> sb.append(e);
                    }
                } else {
                    sb.append(c);
                }
            }
        }

        /** Writes a parsed value back (for the events). */
        @SuppressWarnings("unchecked")
        static String write(Object v) {
            StringBuilder sb = new StringBuilder();
            if (v == null) {
                sb.append("null");
            } else if (v instanceof String str) {
                Json.quote(sb, str);
            } else if (v instanceof Map<?, ?> m) {
                sb.append('{');
                boolean f = true;
                for (Map.Entry<String, Object> e : ((Map<String, Object>) m).entrySet()) {
                    if (!f) {
                        sb.append(',');
                    }
                    f = false;
                    Json.quote(sb, e.getKey());
                    sb.append(':').append(write(e.getValue()));
                }
                sb.append('}');
            } else if (v instanceof List<?> l) {
                sb.append('[');
                for (int j = 0; j < l.size(); j++) {
                    if (j > 0) {
                        sb.append(',');
                    }
                    sb.append(write(l.get(j)));
                }
                sb.append(']');
            } else {
                sb.append(v);
            }
            return sb.toString();
        }
    }
}
