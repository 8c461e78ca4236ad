package gregor.compat;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreatePartitionsOptions;
import org.apache.kafka.clients.admin.DeletedRecords;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The admin APIs of issue 10 through the stock Java AdminClient (4.3.1),
 * driven by compat-tests/python/test_admin_clients.py through
 * compat-tests/java/admin.sh.
 *
 * <p>Usage: {@code Admin10 BOOTSTRAP PREFIX}. Runs createPartitions,
 * incrementalAlterConfigs (topic, broker, and the {@code <default>} broker
 * entity, which librdkafka cannot name), describeConfigs, deleteRecords,
 * describeLogDirs and describeTopics on the topic PREFIX-admin, and prints
 * one JSON event per step with what the broker answered (values, sources,
 * synonyms, exception class names). The Python side asserts them. Broker
 * configs it changes are deleted again before it exits. Exits non-zero with
 * a FAIL line on stderr when a call that must succeed fails.
 *
 * <p>{@code Admin10 partitions BOOTSTRAP PREFIX}: a KafkaConsumer subscribed
 * to PREFIX-parts (one partition) and a KafkaProducer, both with
 * metadata.max.age.ms=500; createPartitions to 3; waits until the consumer is
 * assigned all three and the producer's partitioner has written keyed
 * records to each (it learns them from its own metadata refresh), then until
 * the consumer has read every record; prints a {@code partitions} event.
 */
public final class Admin10 {
    static final int TIMEOUT_MS = 30_000;

    public static void main(String[] args) throws Exception {
        if (args.length == 3 && args[0].equals("partitions")) {
            try {
                newPartitions(args[1], args[2] + "-parts");
            } catch (Exception e) {
                System.err.println("FAIL " + e);
                e.printStackTrace();
                System.exit(1);
            }
            return;
        }
        if (args.length < 2) {
            System.err.println("usage: Admin10 BOOTSTRAP PREFIX | Admin10 partitions BOOTSTRAP PREFIX");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, TIMEOUT_MS);
        try (Admin admin = Admin.create(props)) {
            new Admin10(admin, args[0], args[1] + "-admin").run();
        } catch (Exception e) {
            System.err.println("FAIL " + e);
            e.printStackTrace();
            System.exit(1);
        }
    }

    private final Admin admin;
    private final String bootstrap;
    private final String topic;

    Admin10(Admin admin, String bootstrap, String topic) {
        this.admin = admin;
        this.bootstrap = bootstrap;
        this.topic = topic;
    }

    static void newPartitions(String bootstrap, String topic) throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, topic + "-group");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cp.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, 500);
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.METADATA_MAX_AGE_CONFIG, 500);
        try (Admin admin = Admin.create(ap);
                KafkaConsumer<String, String> consumer =
                        new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer());
                KafkaProducer<String, String> producer =
                        new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
            Admin10 a = new Admin10(admin, bootstrap, topic);
            get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all());
            a.waitPartitions(1);
            consumer.subscribe(List.of(topic));
            Map<String, String> read = new TreeMap<>(); // "partition/offset" -> value
            long deadline = System.currentTimeMillis() + 60_000;
            while (consumer.assignment().size() != 1) {
                poll(consumer, read, deadline, "assignment of partition 0");
            }
            Map<String, String> sent = new TreeMap<>();
            send(producer, topic, 0, sent);
            get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all());
            while (consumer.assignment().size() != 3) {
                poll(consumer, read, deadline, "assignment of the new partitions");
            }
            java.util.Set<Integer> parts = new java.util.TreeSet<>();
            int i = 1;
            while (parts.size() != 3) {
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("the producer never wrote to every partition: " + sent.keySet());
                }
                parts.add(send(producer, topic, i++, sent));
            }
            while (!read.keySet().containsAll(sent.keySet())) {
                poll(consumer, read, deadline, "every record read");
            }
            List<Integer> assigned = new ArrayList<>();
            for (TopicPartition tp : consumer.assignment()) {
                assigned.add(tp.partition());
            }
            java.util.Collections.sort(assigned);
            Json.emit(Json.event("partitions").ints("assigned", assigned).ints("written", parts)
                    .num("sent", sent.size()).bool("read_equals_sent", read.equals(sent)));
        }
    }

    static void poll(KafkaConsumer<String, String> c, Map<String, String> read, long deadline, String what) {
        if (System.currentTimeMillis() > deadline) {
            throw new IllegalStateException("no " + what + " within 60 s (assignment " + c.assignment() + ")");
        }
        for (ConsumerRecord<String, String> r : c.poll(java.time.Duration.ofMillis(200))) {
            read.put(r.partition() + "/" + r.offset(), r.value());
        }
    }

    /** One keyed record, partitioner's choice; returns its partition. */
    static int send(KafkaProducer<String, String> p, String topic, int i, Map<String, String> sent) throws Exception {
        org.apache.kafka.clients.producer.RecordMetadata m =
                p.send(new ProducerRecord<>(topic, "key-" + i, "v" + i)).get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
        sent.put(m.partition() + "/" + m.offset(), "v" + i);
        return m.partition();
    }

    static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) throws Exception {
        return f.get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    }

    /** Class name of the failure of {@code f}, or null when it succeeds. */
    static String failure(org.apache.kafka.common.KafkaFuture<?> f) throws Exception {
        try {
            f.get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
            return null;
        } catch (ExecutionException e) {
            return e.getCause().getClass().getSimpleName();
        }
    }

    void run() throws Exception {
        get(admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all());
        waitPartitions(1);
        createPartitions();
        topicConfigs();
        brokerConfigs();
        deleteRecords();
        logDirs();
        describeTopics();
    }

    TopicDescription describe() throws Exception {
        return get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
    }

    /** Kafka propagates metadata asynchronously even on one node: poll. */
    void waitPartitions(int n) throws Exception {
        long deadline = System.currentTimeMillis() + TIMEOUT_MS;
        while (true) {
            try {
                TopicDescription d = describe();
                if (d.partitions().size() == n && d.partitions().stream().allMatch(p -> p.leader() != null)) {
                    return;
                }
            } catch (ExecutionException e) {
                // unknown for a moment
            }
            if (System.currentTimeMillis() > deadline) {
                throw new IllegalStateException(topic + ": not " + n + " partitions with leaders in time");
            }
            Thread.sleep(100);
        }
    }

    void createPartitions() throws Exception {
        get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3)),
                new CreatePartitionsOptions().validateOnly(true)).all());
        int validateOnly = describe().partitions().size();
        get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all());
        waitPartitions(3);
        String decrease = failure(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all());
        Json.emit(Json.event("create_partitions").num("validate_only_partitions", validateOnly)
                .num("after", describe().partitions().size()).str("decrease_error", decrease));
    }

    ConfigEntry configEntry(ConfigResource r, String name) throws Exception {
        Config c = get(admin.describeConfigs(List.of(r),
                new org.apache.kafka.clients.admin.DescribeConfigsOptions().includeSynonyms(true)).all()).get(r);
        ConfigEntry e = c.get(name);
        if (e == null) {
            throw new IllegalStateException(name + " missing from DescribeConfigs of " + r);
        }
        return e;
    }

    /**
     * Polls DescribeConfigs until {@code name} has this value and source (Kafka
     * applies config changes through its metadata log, a moment after the
     * response) or 30 s pass; returns the last entry either way, for the
     * caller to report.
     */
    ConfigEntry awaitEntry(ConfigResource r, String name, String value, ConfigEntry.ConfigSource source)
            throws Exception {
        long deadline = System.currentTimeMillis() + TIMEOUT_MS;
        while (true) {
            ConfigEntry e = configEntry(r, name);
            if (java.util.Objects.equals(value, e.value()) && e.source() == source
                    || System.currentTimeMillis() > deadline) {
                return e;
            }
            Thread.sleep(100);
        }
    }

    static String pair(ConfigEntry e) {
        StringBuilder sb = new StringBuilder("[");
        quoteOrNull(sb, e.value());
        sb.append(',');
        Json.quote(sb, e.source().name());
        return sb.append(']').toString();
    }

    static String synonyms(ConfigEntry e) {
        StringBuilder sb = new StringBuilder("[");
        boolean first = true;
        for (ConfigEntry.ConfigSynonym s : e.synonyms()) {
            if (!first) {
                sb.append(',');
            }
            first = false;
            sb.append('[');
            Json.quote(sb, s.name());
            sb.append(',');
            quoteOrNull(sb, s.value());
            sb.append(',');
            Json.quote(sb, s.source().name());
            sb.append(']');
        }
        return sb.append(']').toString();
    }

    static void quoteOrNull(StringBuilder sb, String s) {
        if (s == null) {
            sb.append("null");
        } else {
            Json.quote(sb, s);
        }
    }

    void alter(ConfigResource r, Collection<AlterConfigOp> ops) throws Exception {
        get(admin.incrementalAlterConfigs(Map.of(r, ops)).all());
    }

    void topicConfigs() throws Exception {
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        alter(r, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "1234567"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND)));
        ConfigEntry retention = awaitEntry(r, "retention.ms", "1234567", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
        ConfigEntry policy = awaitEntry(r, "cleanup.policy", "delete,compact",
                ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG);
        String invalid = failure(admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "abc"), AlterConfigOp.OpType.SET)))).all());
        alter(r, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", null), AlterConfigOp.OpType.DELETE)));
        Json.emit(Json.event("topic_configs").raw("retention.ms", pair(retention))
                .raw("retention.ms.synonyms", synonyms(retention))
                .raw("cleanup.policy", pair(policy)).str("invalid_error", invalid)
                .raw("after_delete", pair(awaitEntry(r, "retention.ms", "604800000",
                        ConfigEntry.ConfigSource.DEFAULT_CONFIG))));
    }

    void brokerConfigs() throws Exception {
        Collection<Node> nodes = get(admin.describeCluster().nodes());
        if (nodes.size() != 1) {
            throw new IllegalStateException("expected one broker, got " + nodes);
        }
        ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, nodes.iterator().next().idString());
        // the cluster-wide <default> entity is the broker resource with an empty name
        ConfigResource dflt = new ConfigResource(ConfigResource.Type.BROKER, "");
        // 9 and 10 days: longer than the default, harmless on a shared broker
        try {
            alter(dflt, List.of(new AlterConfigOp(new ConfigEntry("log.retention.ms", "777600000"),
                    AlterConfigOp.OpType.SET)));
            alter(broker, List.of(new AlterConfigOp(new ConfigEntry("log.retention.ms", "864000000"),
                    AlterConfigOp.OpType.SET)));
            ConfigEntry b = awaitEntry(broker, "log.retention.ms", "864000000",
                    ConfigEntry.ConfigSource.DYNAMIC_BROKER_CONFIG);
            ConfigEntry d = awaitEntry(dflt, "log.retention.ms", "777600000",
                    ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG);
            alter(broker, List.of(new AlterConfigOp(new ConfigEntry("log.retention.ms", null),
                    AlterConfigOp.OpType.DELETE)));
            ConfigEntry afterBroker = awaitEntry(broker, "log.retention.ms", "777600000",
                    ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG);
            alter(dflt, List.of(new AlterConfigOp(new ConfigEntry("log.retention.ms", null),
                    AlterConfigOp.OpType.DELETE)));
            // back to the default: log.retention.ms has no value of its own
            // (log.retention.hours rules); Kafka may answer the old value with
            // source DEFAULT_CONFIG for a moment, hence null awaited
            ConfigEntry afterDefault = awaitEntry(broker, "log.retention.ms", null,
                    ConfigEntry.ConfigSource.DEFAULT_CONFIG);
            Json.emit(Json.event("broker_configs").raw("broker", pair(b)).raw("broker_synonyms", synonyms(b))
                    .raw("default", pair(d)).raw("after_delete_broker", pair(afterBroker))
                    .raw("after_delete_default", pair(afterDefault)));
        } finally {
            // leave a shared broker as found, whatever failed above
            for (ConfigResource r : List.of(broker, dflt)) {
                try {
                    alter(r, List.of(new AlterConfigOp(new ConfigEntry("log.retention.ms", null),
                            AlterConfigOp.OpType.DELETE)));
                } catch (Exception e) {
                    System.err.println("cleanup of " + r + ": " + e);
                }
            }
        }
    }

    void deleteRecords() throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        try (KafkaProducer<String, String> producer =
                new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < 10; i++) {
                producer.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i)).get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
            }
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        DeletedRecords dr = get(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp));
        long earliest = get(admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).partitionResult(tp)).offset();
        long latest = get(admin.listOffsets(Map.of(tp, OffsetSpec.latest())).partitionResult(tp)).offset();
        String beyond = failure(admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(11))).all());
        Json.emit(Json.event("delete_records").num("low_watermark", dr.lowWatermark()).num("earliest", earliest)
                .num("latest", latest).str("beyond_error", beyond));
    }

    void logDirs() throws Exception {
        Collection<Node> nodes = get(admin.describeCluster().nodes());
        List<Integer> ids = new ArrayList<>();
        for (Node n : nodes) {
            ids.add(n.id());
        }
        Map<Integer, Map<String, LogDirDescription>> all = get(admin.describeLogDirs(ids).allDescriptions());
        StringBuilder sb = new StringBuilder("[");
        boolean first = true;
        for (Map<String, LogDirDescription> dirs : all.values()) {
            for (Map.Entry<String, LogDirDescription> d : new TreeMap<>(dirs).entrySet()) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                sb.append("{\"path\":");
                Json.quote(sb, d.getKey());
                sb.append(",\"error\":");
                quoteOrNull(sb, d.getValue().error() == null ? null : d.getValue().error().getClass().getSimpleName());
                sb.append(",\"partitions\":[");
                boolean f2 = true;
                for (Map.Entry<TopicPartition, ReplicaInfo> r : d.getValue().replicaInfos().entrySet()) {
                    if (!r.getKey().topic().equals(topic)) {
                        continue; // a shared broker has other topics
                    }
                    if (!f2) {
                        sb.append(',');
                    }
                    f2 = false;
                    sb.append("{\"topic\":");
                    Json.quote(sb, r.getKey().topic());
                    sb.append(",\"partition\":").append(r.getKey().partition())
                            .append(",\"size\":").append(r.getValue().size())
                            .append(",\"offset_lag\":").append(r.getValue().offsetLag())
                            .append(",\"future\":").append(r.getValue().isFuture()).append('}');
                }
                sb.append("]}");
            }
        }
        Json.emit(Json.event("log_dirs").raw("dirs", sb.append(']').toString()));
    }

    void describeTopics() throws Exception {
        TopicDescription d = describe();
        List<Integer> parts = new ArrayList<>();
        boolean leadersOk = true;
        for (var p : d.partitions()) {
            parts.add(p.partition());
            leadersOk &= p.leader() != null && p.replicas().equals(List.of(p.leader()))
                    && p.isr().equals(List.of(p.leader()));
        }
        Json.emit(Json.event("describe_topics").ints("partitions", parts).bool("internal", d.isInternal())
                .bool("leaders_ok", leadersOk));
    }
}
