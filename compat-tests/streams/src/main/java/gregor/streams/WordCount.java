package gregor.streams;

import java.io.InputStream;
import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

/**
 * Word count with processing.guarantee=exactly_once_v2, for
 * compat-tests/python/test_streams_eos.py.
 *
 * <pre>
 * run BOOTSTRAP APP_ID INPUT OUTPUT STATE_DIR [streams.property=value ...]
 * </pre>
 *
 * INPUT (String lines) -> flatMapValues(words) -> groupBy(word) (a repartition
 * topic) -> count() (persistent store "counts", changelogged) -> OUTPUT
 * (String word -> Long count). Runs until stdin closes or SIGTERM, then
 * closes KafkaStreams, leaving the group so that a restart rebalances at
 * once. Prints, one per line, flushed: "STATE <new state>" on every state
 * change, "THREAD-ERROR <exception>" when a stream thread dies (it is
 * replaced), "CLOSED <true|false>" after close. Logs go to stderr.
 */
public final class WordCount {
    private static final Object OUT = new Object();

    static void say(String line) {
        synchronized (OUT) {
            System.out.println(line);
            System.out.flush();
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 6 || !args[0].equals("run")) {
            System.err.println("usage: WordCount run BOOTSTRAP APP_ID INPUT OUTPUT STATE_DIR [key=value ...]");
            System.exit(2);
        }
        String bootstrap = args[1], appId = args[2], input = args[3], output = args[4], stateDir = args[5];

        Properties p = new Properties();
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        // No record cache: every increment is forwarded, so the committed
        // output of a word is exactly 1, 2, ..., n and any double counting or
        // lost update shows.
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        // replication.factor stays at its default, -1: the broker's default
        // (1 on a single node).
        for (String kv : Arrays.copyOfRange(args, 6, args.length)) {
            int eq = kv.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("expected key=value, got " + kv);
            p.put(kv.substring(0, eq), kv.substring(eq + 1));
        }

        StreamsBuilder b = new StreamsBuilder();
        b.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\W+")))
            .filter((k, w) -> !w.isEmpty())
            .groupBy((k, w) -> w, Grouped.with("words", Serdes.String(), Serdes.String()))
            .count(Materialized.as("counts"))
            .toStream()
            .to(output, Produced.with(Serdes.String(), Serdes.Long()));
        Topology topology = b.build();
        System.err.println(topology.describe());

        KafkaStreams streams = new KafkaStreams(topology, p);
        CountDownLatch done = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            say("STATE " + now);
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) done.countDown();
        });
        // A stream thread that dies (e.g. its producer fenced or timed out
        // while the broker was down) is replaced, as a production app would.
        streams.setUncaughtExceptionHandler(e -> {
            say("THREAD-ERROR " + e.toString().replace('\n', ' '));
            return StreamThreadExceptionResponse.REPLACE_THREAD;
        });

        AtomicBoolean closed = new AtomicBoolean();
        Runnable close = () -> {
            if (closed.compareAndSet(false, true)) {
                boolean ok = streams.close(CloseOptions
                    .groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                    .withTimeout(Duration.ofSeconds(30)));
                say("CLOSED " + ok);
            }
        };
        Runtime.getRuntime().addShutdownHook(new Thread(close, "close-on-signal"));

        streams.start();
        Thread stdin = new Thread(() -> {
            try {
                InputStream in = System.in;
                while (in.read() >= 0) { }
            } catch (Exception ignored) {
            }
            done.countDown();
        }, "stdin-watch");
        stdin.setDaemon(true);
        stdin.start();
        done.await();
        close.run();
        System.exit(0);
    }
}
