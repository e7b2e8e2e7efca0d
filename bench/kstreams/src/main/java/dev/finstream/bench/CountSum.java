package dev.finstream.bench;

import java.nio.ByteBuffer;

import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serializer;

/** W2's aggregate {count, sum}: 16 bytes, two big-endian longs (the same bytes as finstream's). */
final class CountSum {
    private CountSum() {}

    static final class Ser implements Serializer<long[]> {
        @Override
        public byte[] serialize(String topic, long[] v) {
            return v == null ? null : ByteBuffer.allocate(16).putLong(v[0]).putLong(v[1]).array();
        }
    }

    static final class De implements Deserializer<long[]> {
        @Override
        public long[] deserialize(String topic, byte[] b) {
            if (b == null) {
                return null;
            }
            if (b.length != 16) {
                throw new SerializationException("count/sum: expected 16 bytes, got " + b.length);
            }
            ByteBuffer buf = ByteBuffer.wrap(b);
            return new long[] {buf.getLong(), buf.getLong()};
        }
    }
}
