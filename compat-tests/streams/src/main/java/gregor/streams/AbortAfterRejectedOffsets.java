package gregor.streams;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The path a Streams thread takes when its group moved on under it (e.g.
 * after a broker restart): TxnOffsetCommit is rejected with
 * ILLEGAL_GENERATION, then the transaction is aborted and the next one
 * goes on. With transaction version 2 nothing else is in that
 * transaction.
 *
 * <pre>
 * abort-probe BOOTSTRAP TOPIC GROUP TRANSACTIONAL_ID
 * </pre>
 *
 * Prints "GENERATION n", "COMMIT1 ok", "OFFSETS &lt;outcome&gt;",
 * "ABORT &lt;outcome&gt;", "COMMIT2 &lt;outcome&gt;" (outcome: ok or the
 * exception); the caller judges them and reads TOPIC.
 */
public final class AbortAfterRejectedOffsets {
    public static void main(String[] args) throws Exception {
        if (args.length != 5 || !args[0].equals("abort-probe")) {
            System.err.println("usage: AbortAfterRejectedOffsets abort-probe BOOTSTRAP TOPIC GROUP TRANSACTIONAL_ID");
            System.exit(2);
        }
        String bootstrap = args[1], topic = args[2], group = args[3], txnId = args[4];
        Properties cp = new Properties();
        cp.put("bootstrap.servers", bootstrap);
        cp.put("group.id", group);
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        Properties pp = new Properties();
        pp.put("bootstrap.servers", bootstrap);
        pp.put("transactional.id", txnId);
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp);
             KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            c.subscribe(List.of(topic));
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (c.assignment().isEmpty()) {
                if (System.nanoTime() > deadline) throw new IllegalStateException("no assignment within 60 s");
                c.poll(Duration.ofMillis(100));
            }
            ConsumerGroupMetadata real = c.groupMetadata();
            WordCount.say("GENERATION " + real.generationId());

            p.initTransactions();
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, "k", "committed-1")).get();
            p.commitTransaction();
            WordCount.say("COMMIT1 ok");

            p.beginTransaction();
            // a generation the group is not at: what a fenced Streams thread sends
            ConsumerGroupMetadata stale = new ConsumerGroupMetadata(
                group, real.generationId() + 5, real.memberId(), Optional.empty());
            WordCount.say("OFFSETS " + outcome(() -> p.sendOffsetsToTransaction(
                Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(1)), stale)));
            String abort = outcome(p::abortTransaction);
            WordCount.say("ABORT " + abort);
            if (!abort.equals("ok")) return;  // the producer is unusable now

            WordCount.say("COMMIT2 " + outcome(() -> {
                p.beginTransaction();
                p.send(new ProducerRecord<>(topic, "k", "committed-2")).get();
                p.commitTransaction();
            }));
        }
    }

    interface Step {
        void run() throws Exception;
    }

    static String outcome(Step s) {
        try {
            s.run();
            return "ok";
        } catch (Exception e) {
            return e.getClass().getSimpleName() + ": " + e.getMessage();
        }
    }
}
