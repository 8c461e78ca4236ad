package gregor.compat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.utils.AppInfoParser;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.utils.Utils;

/**
 * The client-matrix scenario (compat-tests/matrix/README.md) with the stock
 * Java kafka-clients; run by compat-tests/matrix/java/run.sh.
 *
 * <ol>
 * <li>Admin createTopics: one 3-partition topic (a second create fails with
 * TopicExistsException); describeTopics shows 3 partitions with a leader.</li>
 * <li>One KafkaProducer per codec (none, gzip, snappy, lz4, zstd), idempotence
 * left at its default (on: InitProducerId, acks=all): keyed and unkeyed
 * records, headers with repeated keys and null / empty header values, null
 * keys, null values, empty values, an empty key, explicit CreateTime
 * timestamps. Each RecordMetadata: partition as requested or murmur2 of the
 * key, offsets consecutive from 0, timestamp as sent; the producer's
 * compression-rate-avg is below 1 for every codec but none.</li>
 * <li>KafkaConsumer without a group: assign every partition, seekToBeginning,
 * poll until each partition's end: partition, offset, key, value, headers
 * (order, repeats, nulls), timestamp and CreateTime type as produced; offsets
 * contiguous from 0; per-key order.</li>
 * <li>Consumer beginningOffsets / endOffsets / offsetsForTimes and Admin
 * listOffsets earliest / latest / forTimestamp: 0, the count per partition,
 * and for a timestamp between two records the first record at or after it
 * (none after the last record).</li>
 * </ol>
 * Exits 0 and prints {@code RESULT java <version> ok} last only if every check
 * passed; otherwise prints {@code FAIL <step>: <what>} and exits 1.
 * Usage: MatrixScenario BOOTSTRAP TOPIC_PREFIX
 */
public final class MatrixScenario {
    static final int PARTITIONS = 3;
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};
    static final String[] KEYS = {"alpha", "bravo", "charlie", "delta", "echo"};
    static final long TIMEOUT_S = 30;

    static String step = "setup";

    static final class CheckFailed extends RuntimeException {
        CheckFailed(String msg) {
            super(msg);
        }
    }

    static void step(String name) {
        step = name;
        System.out.println("STEP " + name);
    }

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new CheckFailed(step + ": " + what);
        }
    }

    static byte[] b(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    static String show(byte[] v) {
        if (v == null) {
            return "null";
        }
        String s = new String(v, StandardCharsets.UTF_8);
        return '"' + (s.length() > 60 ? s.substring(0, 60) + "..." : s) + '"';
    }

    /** One produced record and where it was acknowledged. */
    static final class Rec {
        final int seq;
        final String codec;
        final byte[] key;
        final byte[] value;
        final List<Header> headers;
        final long timestamp;
        Integer partition;
        long offset = -1;

        Rec(int seq, String codec, byte[] key, byte[] value, List<Header> headers, long timestamp, Integer partition) {
            this.seq = seq;
            this.codec = codec;
            this.key = key;
            this.value = value;
            this.headers = headers;
            this.timestamp = timestamp;
            this.partition = partition;
        }

        String id() {
            return codec + "-" + seq;
        }
    }

    static List<Rec> makeRecords(String codec, int firstSeq, long baseTs) {
        List<Rec> recs = new ArrayList<>();
        String filler = (codec + " payload that compresses well ").repeat(8);
        class Adder {
            void add(byte[] key, byte[] value, Integer partition, Header... extra) {
                int seq = firstSeq + recs.size();
                List<Header> h = new ArrayList<>();
                h.add(new RecordHeader("id", b(codec + "-" + seq)));
                h.addAll(Arrays.asList(extra));
                recs.add(new Rec(seq, codec, key, value, h, baseTs + seq * 10L, partition));
            }
        }
        Adder a = new Adder();
        for (int round = 0; round < 4; round++) {
            for (String k : KEYS) {
                byte[] v = b(k + "#" + round + " " + filler);
                if (round % 2 == 1) {
                    a.add(b(k), v, null,
                        new RecordHeader("rep", b("first")), new RecordHeader("rep", b("second")),
                        new RecordHeader("rep", b("")), new RecordHeader("nullh", (byte[]) null),
                        new RecordHeader("single", b("x")));
                } else {
                    a.add(b(k), v, null);
                }
            }
        }
        for (int i = 0; i < 6; i++) {
            a.add(null, b("unkeyed#" + i + " " + filler), i % PARTITIONS);
        }
        a.add(b("alpha"), null, null); // tombstone
        a.add(b("bravo"), new byte[0], null); // empty value
        a.add(null, new byte[0], 1); // null key, empty value
        a.add(null, null, 2, new RecordHeader("rep", b("a")), new RecordHeader("rep", b("a"))); // null key and value
        a.add(new byte[0], b("empty-key " + filler), null); // empty (not null) key
        a.add(b("ключ-ü"), b("значение ✓"), null, new RecordHeader("ключ", b("✓")));
        return recs;
    }

    static boolean headersEqual(List<Header> want, Header[] got) {
        if (want.size() != got.length) {
            return false;
        }
        for (int i = 0; i < got.length; i++) {
            if (!want.get(i).key().equals(got[i].key()) || !Arrays.equals(want.get(i).value(), got[i].value())) {
                return false;
            }
        }
        return true;
    }

    static String showHeaders(Iterable<Header> hs) {
        StringBuilder sb = new StringBuilder("[");
        for (Header h : hs) {
            sb.append(h.key()).append('=').append(show(h.value())).append(' ');
        }
        return sb.append(']').toString();
    }

    static <T> T get(Future<T> f) throws Exception {
        try {
            return f.get(TIMEOUT_S, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            throw new CheckFailed(step + ": " + e.getCause());
        }
    }

    static void run(String bootstrap, String prefix) throws Exception {
        String topic = prefix + "java-" + Long.toString(System.currentTimeMillis(), 36);
        System.out.println("kafka-clients " + AppInfoParser.getVersion() + " bootstrap=" + bootstrap + " topic=" + topic);
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) {
            tps.add(new TopicPartition(topic, p));
        }

        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) TIMEOUT_S * 1000);
        ap.put(AdminClientConfig.CLIENT_ID_CONFIG, "gregor-matrix-java-admin");
        try (Admin admin = Admin.create(ap)) {
            // 1. CreateTopics
            step("create-topic");
            get(admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all());
            try {
                admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all().get(TIMEOUT_S, TimeUnit.SECONDS);
                check(false, "a second createTopics of " + topic + " succeeded");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof TopicExistsException, "second createTopics failed with " + e.getCause() + ", expected TopicExistsException");
            }
            long deadline = System.currentTimeMillis() + TIMEOUT_S * 1000;
            while (true) {
                String seen;
                try {
                    TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get(TIMEOUT_S, TimeUnit.SECONDS).get(topic);
                    if (d.partitions().size() == PARTITIONS && d.partitions().stream().allMatch(p -> p.leader() != null && p.leader().id() >= 0)) {
                        break;
                    }
                    seen = d.toString();
                } catch (ExecutionException e) {
                    seen = e.getCause().toString(); // Kafka propagates metadata asynchronously
                }
                check(System.currentTimeMillis() < deadline, "describeTopics never showed " + PARTITIONS + " partitions with leaders: " + seen);
                Thread.sleep(100);
            }
            System.out.println("  created " + topic + " with " + PARTITIONS + " partitions");

            // 2. Produce, one idempotent producer per codec
            step("produce");
            long baseTs = System.currentTimeMillis() - 10 * 60 * 1000;
            List<List<Rec>> expected = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) {
                expected.add(new ArrayList<>());
            }
            Map<String, Integer> keyPartition = new HashMap<>();
            int seq = 0;
            for (String codec : CODECS) {
                Properties pp = new Properties();
                pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
                pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
                pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
                pp.put(ProducerConfig.LINGER_MS_CONFIG, 20);
                pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) TIMEOUT_S * 1000);
                pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 20000);
                pp.put(ProducerConfig.CLIENT_ID_CONFIG, "gregor-matrix-java-" + codec);
                // enable.idempotence and acks left at their defaults (true, all)
                List<Rec> recs = makeRecords(codec, seq, baseTs);
                seq += recs.size();
                List<RecordMetadata> metas = new ArrayList<>();
                double compressionRate;
                try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(pp)) {
                    List<Future<RecordMetadata>> futs = new ArrayList<>();
                    for (Rec r : recs) {
                        futs.add(producer.send(new ProducerRecord<>(topic, r.partition, r.timestamp, r.key, r.value, r.headers)));
                    }
                    producer.flush();
                    for (Future<RecordMetadata> f : futs) {
                        metas.add(get(f));
                    }
                    compressionRate = metric(producer.metrics(), "producer-metrics", "compression-rate-avg");
                }
                for (int i = 0; i < recs.size(); i++) {
                    Rec r = recs.get(i);
                    RecordMetadata md = metas.get(i);
                    check(md.topic().equals(topic), r.id() + ": acknowledged for topic " + md.topic());
                    if (r.partition != null) {
                        check(md.partition() == r.partition, r.id() + ": acknowledged in partition " + md.partition() + ", sent to " + r.partition);
                    } else {
                        int want = Utils.toPositive(Utils.murmur2(r.key)) % PARTITIONS;
                        check(md.partition() == want, r.id() + ": key " + show(r.key) + " went to partition " + md.partition() + ", murmur2 says " + want);
                        r.partition = md.partition();
                    }
                    if (r.key != null) {
                        String k = new String(r.key, StandardCharsets.UTF_8);
                        check(keyPartition.computeIfAbsent(k, x -> r.partition).equals(r.partition), r.id() + ": key " + k + " in two partitions");
                    }
                    check(md.timestamp() == r.timestamp, r.id() + ": acknowledged timestamp " + md.timestamp() + ", sent " + r.timestamp);
                    r.offset = md.offset();
                    expected.get(r.partition).add(r);
                }
                for (int p = 0; p < PARTITIONS; p++) {
                    List<Rec> e = expected.get(p);
                    for (int o = 0; o < e.size(); o++) {
                        check(e.get(o).offset == o, codec + ": partition " + p + " record " + e.get(o).id() + " acknowledged at offset " + e.get(o).offset + ", expected " + o);
                    }
                }
                if (!codec.equals("none")) {
                    check(compressionRate > 0 && compressionRate < 1.0, codec + ": producer compression-rate-avg " + compressionRate + ": it did not compress");
                }
                System.out.printf("  produced %d records with %s (idempotent, compression-rate-avg %.3f)%n", recs.size(), codec, compressionRate);
            }
            int[] counts = new int[PARTITIONS];
            for (int p = 0; p < PARTITIONS; p++) {
                counts[p] = expected.get(p).size();
            }
            System.out.println("  per-partition counts " + Arrays.toString(counts));

            // 3. Consume from the beginning without a group
            step("consume");
            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
            cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
            cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
            cp.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) TIMEOUT_S * 1000);
            cp.put(ConsumerConfig.CLIENT_ID_CONFIG, "gregor-matrix-java-consumer");
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp)) {
                c.assign(tps);
                c.seekToBeginning(tps);
                List<List<ConsumerRecord<byte[], byte[]>>> got = new ArrayList<>();
                for (int p = 0; p < PARTITIONS; p++) {
                    got.add(new ArrayList<>());
                }
                long until = System.currentTimeMillis() + TIMEOUT_S * 1000;
                while (true) {
                    boolean done = true;
                    for (int p = 0; p < PARTITIONS; p++) {
                        done &= got.get(p).size() >= counts[p];
                    }
                    if (done) {
                        break;
                    }
                    check(System.currentTimeMillis() < until, "timed out reading: got " + got.stream().map(List::size).toList() + " of " + Arrays.toString(counts));
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                        check(r.topic().equals(topic), "record from topic " + r.topic());
                        got.get(r.partition()).add(r);
                    }
                }
                for (int p = 0; p < PARTITIONS; p++) {
                    check(got.get(p).size() == counts[p], "partition " + p + ": read " + got.get(p).size() + " records, expected " + counts[p]);
                    Map<String, Integer> lastSeq = new HashMap<>();
                    for (int i = 0; i < counts[p]; i++) {
                        ConsumerRecord<byte[], byte[]> m = got.get(p).get(i);
                        Rec e = expected.get(p).get(i);
                        String where = "partition " + p + " offset " + i + " (" + e.id() + ")";
                        check(m.offset() == i, where + ": offset " + m.offset() + ": offsets not contiguous from 0");
                        check(Arrays.equals(m.key(), e.key), where + ": key " + show(m.key()) + ", expected " + show(e.key));
                        check(Arrays.equals(m.value(), e.value), where + ": value " + show(m.value()) + ", expected " + show(e.value));
                        check(headersEqual(e.headers, m.headers().toArray()), where + ": headers " + showHeaders(m.headers()) + ", expected " + showHeaders(e.headers));
                        check(m.timestamp() == e.timestamp, where + ": timestamp " + m.timestamp() + ", expected " + e.timestamp);
                        check(m.timestampType() == TimestampType.CREATE_TIME, where + ": timestamp type " + m.timestampType());
                        if (m.key() != null) {
                            String k = new String(m.key(), StandardCharsets.UTF_8);
                            check(lastSeq.getOrDefault(k, -1) < e.seq, where + ": key " + k + " out of order");
                            lastSeq.put(k, e.seq);
                        }
                    }
                }
                System.out.println("  read back " + Arrays.stream(counts).sum() + " records, all match");

                // 4. ListOffsets, through the consumer and the admin client
                step("list-offsets");
                Map<TopicPartition, Long> begin = c.beginningOffsets(tps);
                Map<TopicPartition, Long> end = c.endOffsets(tps);
                for (TopicPartition tp : tps) {
                    check(begin.get(tp) == 0L, "beginningOffsets " + begin);
                    check(end.get(tp) == counts[tp.partition()], "endOffsets " + end + ", expected " + Arrays.toString(counts));
                }
                Map<TopicPartition, OffsetSpec> earliest = new LinkedHashMap<>();
                Map<TopicPartition, OffsetSpec> latest = new LinkedHashMap<>();
                for (TopicPartition tp : tps) {
                    earliest.put(tp, OffsetSpec.earliest());
                    latest.put(tp, OffsetSpec.latest());
                }
                Map<TopicPartition, ListOffsetsResultInfo> e0 = get(admin.listOffsets(earliest).all());
                Map<TopicPartition, ListOffsetsResultInfo> l0 = get(admin.listOffsets(latest).all());
                for (TopicPartition tp : tps) {
                    check(e0.get(tp).offset() == 0, "admin listOffsets earliest " + tp + ": " + e0.get(tp));
                    check(l0.get(tp).offset() == counts[tp.partition()], "admin listOffsets latest " + tp + ": " + l0.get(tp) + ", expected " + counts[tp.partition()]);
                }
                Rec mid = expected.get(0).get(counts[0] / 2);
                long[] probes = {
                    baseTs - 60_000, // before everything: 0 everywhere
                    mid.timestamp - 5, // between two records
                    baseTs + (seq / 3) * 10L + 5,
                    baseTs + seq * 10L + 60_000, // after everything: none
                };
                for (long ts : probes) {
                    Map<TopicPartition, Long> q = new HashMap<>();
                    Map<TopicPartition, OffsetSpec> qa = new HashMap<>();
                    for (TopicPartition tp : tps) {
                        q.put(tp, ts);
                        qa.put(tp, OffsetSpec.forTimestamp(ts));
                    }
                    Map<TopicPartition, OffsetAndTimestamp> byTs = c.offsetsForTimes(q);
                    Map<TopicPartition, ListOffsetsResultInfo> byTsAdmin = get(admin.listOffsets(qa).all());
                    for (TopicPartition tp : tps) {
                        Rec first = expected.get(tp.partition()).stream().filter(r -> r.timestamp >= ts).findFirst().orElse(null);
                        OffsetAndTimestamp ot = byTs.get(tp);
                        ListOffsetsResultInfo ai = byTsAdmin.get(tp);
                        if (first == null) {
                            check(ot == null, "offsetsForTimes(" + ts + ") " + tp + ": " + ot + ", expected none");
                            check(ai.offset() == -1, "admin listOffsets forTimestamp(" + ts + ") " + tp + ": " + ai + ", expected offset -1");
                        } else {
                            check(ot != null && ot.offset() == first.offset && ot.timestamp() == first.timestamp,
                                "offsetsForTimes(" + ts + ") " + tp + ": " + ot + ", expected offset " + first.offset + " timestamp " + first.timestamp);
                            check(ai.offset() == first.offset && ai.timestamp() == first.timestamp,
                                "admin listOffsets forTimestamp(" + ts + ") " + tp + ": " + ai + ", expected offset " + first.offset + " timestamp " + first.timestamp);
                        }
                    }
                }
                System.out.println("  earliest, latest and by-timestamp offsets match (consumer and admin)");
            }
        }
    }

    static double metric(Map<MetricName, ? extends Metric> metrics, String group, String name) {
        for (Map.Entry<MetricName, ? extends Metric> e : metrics.entrySet()) {
            if (e.getKey().group().equals(group) && e.getKey().name().equals(name)) {
                Object v = e.getValue().metricValue();
                return v instanceof Number ? ((Number) v).doubleValue() : Double.NaN;
            }
        }
        return Double.NaN;
    }

    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: MatrixScenario BOOTSTRAP TOPIC_PREFIX");
            System.exit(2);
        }
        int code = 0;
        try {
            run(args[0], args[1]);
        } catch (CheckFailed e) {
            System.err.println("FAIL " + e.getMessage());
            code = 1;
        } catch (Throwable t) {
            System.err.println("FAIL " + step + ": " + t);
            t.printStackTrace();
            code = 1;
        }
        if (code == 0) {
            // printed after every client is closed, so that it is the last line
            System.out.println("RESULT java " + AppInfoParser.getVersion() + " ok");
        }
        System.out.flush();
        System.exit(code);
    }
}
