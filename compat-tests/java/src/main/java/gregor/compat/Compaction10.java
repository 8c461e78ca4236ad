package gregor.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java side of compat-tests/python/test_compaction.py (through
 * compat-tests/java/admin.sh compaction ...).
 *
 * <p>{@code Compaction10 produce BOOTSTRAP TOPIC COMPRESSION KEYS VERSIONS}:
 * writes to partition 0, version by version, the value {@code kK-vV} for
 * every key {@code kK} (K below KEYS, V below VERSIONS; one flush per
 * version, so each version is its own batches), then a tombstone (null
 * value) for every key whose number is a multiple of 5; prints
 * {@code {"event":"produced","count":N,"first":O,"last":O}} with the offsets
 * acknowledged.
 *
 * <p>{@code Compaction10 read BOOTSTRAP TOPIC END}: reads partition 0 from
 * the beginning (assign, no group) until its position reaches END and prints
 * {@code {"event":"read","records":[[offset,key,value-or-null],...]}}.
 *
 * <p>Exits non-zero with a FAIL line on stderr when a call fails or a wait
 * runs out (30 s per call, 60 s for the read).
 */
public final class Compaction10 {
    static final int TIMEOUT_MS = 30_000;

    public static void main(String[] args) throws Exception {
        try {
            if (args.length == 6 && args[0].equals("produce")) {
                produce(args[1], args[2], args[3], Integer.parseInt(args[4]), Integer.parseInt(args[5]));
            } else if (args.length == 4 && args[0].equals("read")) {
                read(args[1], args[2], Long.parseLong(args[3]));
            } else {
                System.err.println("usage: Compaction10 produce BOOTSTRAP TOPIC COMPRESSION KEYS VERSIONS"
                        + " | read BOOTSTRAP TOPIC END");
                System.exit(2);
            }
        } catch (Exception e) {
            System.err.println("FAIL " + e);
            e.printStackTrace();
            System.exit(1);
        }
    }

    static void produce(String bootstrap, String topic, String compression, int keys, int versions)
            throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        try (KafkaProducer<String, String> producer =
                new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            for (int v = 0; v < versions; v++) {
                for (int k = 0; k < keys; k++) {
                    fs.add(producer.send(new ProducerRecord<>(topic, 0, "k" + k, "k" + k + "-v" + v)));
                }
                producer.flush();
            }
            for (int k = 0; k < keys; k += 5) {
                fs.add(producer.send(new ProducerRecord<>(topic, 0, "k" + k, null)));
            }
            producer.flush();
            long first = Long.MAX_VALUE;
            long last = -1;
            for (Future<RecordMetadata> f : fs) {
                long o = f.get(TIMEOUT_MS, TimeUnit.MILLISECONDS).offset();
                first = Math.min(first, o);
                last = Math.max(last, o);
            }
            Json.emit(Json.event("produced").num("count", fs.size()).num("first", first).num("last", last));
        }
    }

    static void read(String bootstrap, String topic, long end) throws Exception {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        try (KafkaConsumer<String, String> c =
                new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            StringBuilder sb = new StringBuilder("[");
            boolean first = true;
            long deadline = System.currentTimeMillis() + 2L * TIMEOUT_MS;
            while (c.position(tp, Duration.ofMillis(TIMEOUT_MS)) < end) {
                if (System.currentTimeMillis() > deadline) {
                    throw new IllegalStateException("position " + c.position(tp) + " never reached " + end);
                }
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    if (!first) {
                        sb.append(',');
                    }
                    first = false;
                    sb.append('[').append(r.offset()).append(',');
                    Admin10.quoteOrNull(sb, r.key());
                    sb.append(',');
                    Admin10.quoteOrNull(sb, r.value());
                    sb.append(']');
                }
            }
            Json.emit(Json.event("read").raw("records", sb.append(']').toString()));
        }
    }
}
