package gregor.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.clients.consumer.StickyAssignor;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * One member of a consumer group (classic protocol), driven by a test.
 *
 * <p>Usage: {@code GroupMember BOOTSTRAP GROUP TOPIC [key=value ...]}. It
 * subscribes to TOPIC and prints one JSON object per line on stdout:
 * {@code started}, {@code assigned} / {@code revoked} / {@code lost} (from
 * the rebalance listener: {@code partitions} is what the callback got,
 * {@code owned} the whole assignment afterwards, with {@code generation}
 * and {@code member}), {@code record} ({@code partition}, {@code offset},
 * {@code key}), {@code commit} ({@code ok}, {@code offsets} or
 * {@code error}) and {@code exit} ({@code reason}). After each non-empty
 * poll it commits the consumed positions synchronously (commitSync).
 *
 * <p>Options handled here (the others are consumer properties):
 * {@code strategy=range|roundrobin|sticky|cooperative-sticky} (comma
 * list; default range), {@code idle.exit.ms=N} (exit after N ms without
 * records or rebalance callbacks; default 120000), {@code commit=sync|none}.
 * Exits cleanly (KafkaConsumer.close, which leaves the group unless
 * group.instance.id is set; exit status 0) on SIGTERM/SIGINT.
 */
public final class GroupMember {
    private static String assignors(String strategy) {
        List<String> out = new ArrayList<>();
        for (String s : strategy.split(",")) {
            switch (s.trim()) {
                case "range" -> out.add(RangeAssignor.class.getName());
                case "roundrobin" -> out.add(RoundRobinAssignor.class.getName());
                case "sticky" -> out.add(StickyAssignor.class.getName());
                case "cooperative-sticky" -> out.add(CooperativeStickyAssignor.class.getName());
                default -> throw new IllegalArgumentException("unknown strategy " + s);
            }
        }
        return String.join(",", out);
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: GroupMember BOOTSTRAP GROUP TOPIC [key=value ...]");
            System.exit(2);
        }
        String topic = args[2];
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, args[1]);
        cp.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        String strategy = "range";
        long idleExitMs = 120_000;
        boolean commit = true;
        for (int i = 3; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("expected key=value, got " + args[i]);
            }
            String k = args[i].substring(0, eq);
            String v = args[i].substring(eq + 1);
            switch (k) {
                case "strategy" -> strategy = v;
                case "idle.exit.ms" -> idleExitMs = Long.parseLong(v);
                case "commit" -> commit = v.equals("sync");
                default -> cp.put(k, v);
            }
        }
        cp.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignors(strategy));

        KafkaConsumer<String, String> c = new KafkaConsumer<>(cp);
        AtomicBoolean running = new AtomicBoolean(true);
        AtomicBoolean signalled = new AtomicBoolean(false);
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (done.getCount() == 0) {
                return;
            }
            signalled.set(true);
            running.set(false);
            boolean closed = false;
            try {
                c.wakeup();
                closed = done.await(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                // exiting anyway
            }
            // A clean close on SIGTERM exits 0 (not the JVM's 143).
            Runtime.getRuntime().halt(closed ? 0 : 1);
        }));

        TreeSet<Integer> owned = new TreeSet<>();
        long[] lastActivity = {System.currentTimeMillis()};
        ConsumerRebalanceListener listener = new ConsumerRebalanceListener() {
            private void report(String what, Collection<TopicPartition> ps, boolean add) {
                TreeSet<Integer> parts = new TreeSet<>();
                for (TopicPartition tp : ps) {
                    parts.add(tp.partition());
                }
                if (add) {
                    owned.addAll(parts);
                } else {
                    owned.removeAll(parts);
                }
                Json j = Json.event(what).ints("partitions", parts).ints("owned", owned);
                try {
                    ConsumerGroupMetadata md = c.groupMetadata();
                    j.num("generation", md.generationId()).str("member", md.memberId());
                } catch (RuntimeException e) {
                    j.str("metadata_error", e.toString());
                }
                Json.emit(j);
                lastActivity[0] = System.currentTimeMillis();
            }

            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                report("revoked", ps, false);
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> ps) {
                report("assigned", ps, true);
            }

            @Override
            public void onPartitionsLost(Collection<TopicPartition> ps) {
                report("lost", ps, false);
            }
        };

        String reason = "signal";
        try {
            c.subscribe(List.of(topic), listener);
            Json.emit(Json.event("started").str("strategy", strategy));
            while (running.get()) {
                ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(200));
                Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
                for (ConsumerRecord<String, String> r : rs) {
                    Json.emit(Json.event("record").num("partition", r.partition())
                            .num("offset", r.offset()).str("key", r.key()));
                    next.put(new TopicPartition(r.topic(), r.partition()),
                            new OffsetAndMetadata(r.offset() + 1));
                }
                if (!rs.isEmpty()) {
                    lastActivity[0] = System.currentTimeMillis();
                }
                if (commit && !next.isEmpty()) {
                    Map<String, Long> offs = new TreeMap<>();
                    next.forEach((tp, om) -> offs.put(Integer.toString(tp.partition()), om.offset()));
                    try {
                        c.commitSync(next);
                        Json.emit(Json.event("commit").bool("ok", true).numMap("offsets", offs));
                    } catch (WakeupException e) {
                        Json.emit(Json.event("commit").bool("ok", false).str("error", "wakeup"));
                        break;
                    } catch (RuntimeException e) {
                        Json.emit(Json.event("commit").bool("ok", false).str("error", e.toString()));
                    }
                }
                if (System.currentTimeMillis() - lastActivity[0] > idleExitMs) {
                    reason = "idle";
                    break;
                }
            }
        } catch (WakeupException e) {
            // SIGTERM: close below
        } catch (RuntimeException e) {
            reason = "error: " + e;
            e.printStackTrace();
        } finally {
            try {
                c.close(Duration.ofSeconds(20));
            } catch (RuntimeException e) {
                reason = reason + "; close failed: " + e;
            }
            Json.emit(Json.event("exit").str("reason", signalled.get() ? "signal" : reason));
            done.countDown();
        }
        System.exit(reason.startsWith("error") ? 1 : 0);
    }
}
