package gregor.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
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
 * Stock Java kafka-clients against a broker: AdminClient createTopics, an
 * idempotent (default) KafkaProducer, a second one with gzip, a KafkaConsumer
 * with assign + seekToBeginning + poll (no group), AdminClient listOffsets.
 * Exits non-zero on the first failure. Usage: Scenario BOOTSTRAP [TOPIC]
 */
public final class Scenario {
    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException("check failed: " + what);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: Scenario BOOTSTRAP [TOPIC]");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args.length > 1 ? args[1] : "capture-java";
        TopicPartition tp = new TopicPartition(topic, 0);

        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            System.out.println("created " + topic);

            for (String codec : new String[] {"none", "gzip"}) {
                Properties pp = new Properties();
                pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
                pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
                pp.put(ProducerConfig.LINGER_MS_CONFIG, 50);
                pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30000);
                pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 20000);
                // enable.idempotence left at its default (true): InitProducerId.
                try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
                    int base = codec.equals("none") ? 0 : 3;
                    List<Future<RecordMetadata>> sent = new ArrayList<>();
                    for (int i = base; i < base + 3; i++) {
                        // Compressible values: the gzip batch is worth compressing.
                        String v = codec.equals("none") ? "v" + i : "v" + i + "-" + "gregor".repeat(40);
                        sent.add(p.send(new ProducerRecord<>(topic, 0, "k" + i, v)));
                    }
                    p.flush();
                    for (Future<RecordMetadata> f : sent) {
                        f.get(30, TimeUnit.SECONDS); // a failed send surfaces here
                    }
                }
                System.out.println("produced with compression " + codec);
            }

            Properties cp = new Properties();
            cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
            cp.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
            List<String> got = new ArrayList<>();
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                long deadline = System.currentTimeMillis() + 30000;
                while (got.size() < 6 && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                        got.add(r.offset() + ":" + r.key() + "=" + r.value().substring(0, Math.min(8, r.value().length())));
                    }
                }
                System.out.println("consumed " + got);
                check(got.size() == 6, "6 records consumed, got " + got.size());
                Map<TopicPartition, Long> begin = c.beginningOffsets(List.of(tp));
                Map<TopicPartition, Long> end = c.endOffsets(List.of(tp));
                System.out.println("consumer beginningOffsets " + begin + " endOffsets " + end);
            }

            ListOffsetsResult latest = admin.listOffsets(Map.of(tp, OffsetSpec.latest()));
            long hw = latest.partitionResult(tp).get(30, TimeUnit.SECONDS).offset();
            ListOffsetsResult earliest = admin.listOffsets(Map.of(tp, OffsetSpec.earliest()));
            long lso = earliest.partitionResult(tp).get(30, TimeUnit.SECONDS).offset();
            System.out.println("listOffsets earliest " + lso + " latest " + hw);
            check(lso == 0 && hw == 6, "earliest 0 / latest 6");
        }
        System.out.println("java scenario OK");
    }
}
