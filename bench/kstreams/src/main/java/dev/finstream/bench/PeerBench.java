package dev.finstream.bench;

import java.io.File;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.RoundingMode;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericRecord;

/**
 * One workload of finstream's side-by-side benchmark on Kafka Streams. Started by the Rust
 * harness (bench/src/kstreams.rs) with {@code --key value} arguments; runs until SIGTERM (then
 * closes cleanly) and prints {@code state: RUNNING} once the instance runs.
 *
 * <ul>
 *   <li>W0: passthrough of the raw bytes (no decode).</li>
 *   <li>W2: decode each TransactionEvent, sum the signed amount per account (count and sum in
 *       minor units at scale 4) into a RocksDB store with changelog, emit the table's updates.</li>
 *   <li>W4: decode, join with the global table of exchange-rates by currency, emit the amount in
 *       USD (scale 4, half-even) as a long.</li>
 * </ul>
 */
public final class PeerBench {
    private PeerBench() {}

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = parse(argv);
        String workload = req(a, "workload");
        String input = req(a, "input");
        String output = req(a, "output");
        File schemas = new File(req(a, "schemas-dir"));

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, req(a, "application-id"));
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, req(a, "bootstrap"));
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, a.getOrDefault("guarantee", StreamsConfig.EXACTLY_ONCE_V2));
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Long.parseLong(a.getOrDefault("commit-interval-ms", "100")));
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        p.put(StreamsConfig.STATE_DIR_CONFIG, req(a, "state-dir"));
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, Long.parseLong(a.getOrDefault("cache-bytes", "10485760")));
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        // exactly_once_v2 sets read_committed itself; stated for at_least_once runs too.
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.ISOLATION_LEVEL_CONFIG), "read_committed");
        // Streams' own override (stated, not changed): producers linger 100 ms.
        p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), Integer.parseInt(a.getOrDefault("linger-ms", "100")));

        StreamsBuilder b = new StreamsBuilder();
        switch (workload) {
            case "W0" -> b.stream(input, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
                    .to(output, Produced.with(Serdes.ByteArray(), Serdes.ByteArray()));
            case "W2" -> {
                Serde<GenericRecord> txn = avro(schemas, "TransactionEvent.avsc", a.get("txn-schema-id"));
                Serde<long[]> pair = Serdes.serdeFrom(new CountSum.Ser(), new CountSum.De());
                b.stream(input, Consumed.with(Serdes.String(), txn))
                        .groupByKey(Grouped.with(Serdes.String(), txn))
                        .aggregate(
                                () -> new long[] {0L, 0L},
                                (k, v, agg) -> new long[] {agg[0] + 1, agg[1] + signedMinor(v)},
                                Materialized.<String, long[], KeyValueStore<Bytes, byte[]>>as("w2-sums")
                                        .withKeySerde(Serdes.String())
                                        .withValueSerde(pair))
                        .toStream()
                        .to(output, Produced.with(Serdes.String(), pair));
            }
            case "W4" -> {
                Serde<GenericRecord> txn = avro(schemas, "TransactionEvent.avsc", a.get("txn-schema-id"));
                Serde<GenericRecord> rate = avro(schemas, "ExchangeRate.avsc", a.get("rate-schema-id"));
                GlobalKTable<String, GenericRecord> rates = b.globalTable(
                        req(a, "rates"),
                        Consumed.with(Serdes.String(), rate),
                        Materialized.<String, GenericRecord, KeyValueStore<Bytes, byte[]>>as("w4-rates"));
                KStream<String, GenericRecord> s = b.stream(input, Consumed.with(Serdes.String(), txn));
                s.join(rates, (k, v) -> v.get("currency").toString(), PeerBench::usdMinor)
                        .to(output, Produced.with(Serdes.String(), Serdes.Long()));
            }
            default -> throw new IllegalArgumentException("unknown workload " + workload);
        }

        KafkaStreams streams = new KafkaStreams(b.build(), p);
        CountDownLatch closed = new CountDownLatch(1);
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("kstreams: stream thread failed: " + e);
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) -> {
            System.out.println("state: " + now);
            System.out.flush();
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                closed.countDown();
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(20));
            closed.countDown();
        }));
        streams.start();
        closed.await();
    }

    /** Signed amount in minor units at scale 4: DEPOSIT, REFUND and INTEREST add, the rest subtract. */
    static long signedMinor(GenericRecord v) {
        long amount = unscaled(v.get("amount")).longValueExact();
        return switch (v.get("kind").toString()) {
            case "DEPOSIT", "REFUND", "INTEREST" -> amount;
            default -> -amount;
        };
    }

    /** amount (scale 4) times usd_rate (scale 10), rounded half-even to scale 4, unscaled. */
    static Long usdMinor(GenericRecord txn, GenericRecord rate) {
        BigDecimal amount = new BigDecimal(unscaled(txn.get("amount")), 4);
        BigDecimal usd = new BigDecimal(unscaled(rate.get("usd_rate")), 10);
        return amount.multiply(usd).setScale(4, RoundingMode.HALF_EVEN).unscaledValue().longValueExact();
    }

    static BigInteger unscaled(Object decimalBytes) {
        ByteBuffer buf = ((ByteBuffer) decimalBytes).duplicate();
        byte[] bytes = new byte[buf.remaining()];
        buf.get(bytes);
        return new BigInteger(bytes);
    }

    static Serde<GenericRecord> avro(File dir, String avsc, String schemaId) throws IOException {
        Schema schema = new Schema.Parser().parse(new File(dir, avsc));
        int id = Integer.parseInt(schemaId == null ? "-1" : schemaId);
        return ConfluentAvro.serde(schema, id);
    }

    static Map<String, String> parse(String[] argv) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            if (!argv[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --key value, got " + argv[i]);
            }
            m.put(argv[i].substring(2), argv[i + 1]);
        }
        return m;
    }

    static String req(Map<String, String> a, String key) {
        String v = a.get(key);
        if (v == null) {
            throw new IllegalArgumentException("missing --" + key);
        }
        return v;
    }
}
