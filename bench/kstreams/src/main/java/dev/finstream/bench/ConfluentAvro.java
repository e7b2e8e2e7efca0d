package dev.finstream.bench;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * The Confluent wire format on plain Avro: magic byte 0, the schema id as a big-endian int, then
 * the Avro binary body. The writer schema is the contract's {@code .avsc} (the only schema the
 * harness registers for the topic), so the id is checked rather than looked up in a registry;
 * records are decoded into {@link GenericRecord}s as Confluent's GenericAvroSerde does.
 */
final class ConfluentAvro {
    private ConfluentAvro() {}

    static Serde<GenericRecord> serde(Schema schema, int expectedId) {
        return Serdes.serdeFrom(new Ser(schema, expectedId), new De(schema, expectedId));
    }

    static final class De implements Deserializer<GenericRecord> {
        private final GenericDatumReader<GenericRecord> reader;
        private final int expectedId;
        private BinaryDecoder decoder;

        De(Schema schema, int expectedId) {
            this.reader = new GenericDatumReader<>(schema);
            this.expectedId = expectedId;
        }

        @Override
        public GenericRecord deserialize(String topic, byte[] data) {
            if (data == null) {
                return null;
            }
            if (data.length < 5 || data[0] != 0) {
                throw new SerializationException("not the Confluent wire format (magic byte 0)");
            }
            int id = ByteBuffer.wrap(data, 1, 4).getInt();
            if (expectedId >= 0 && id != expectedId) {
                throw new SerializationException("schema id " + id + ", expected " + expectedId);
            }
            decoder = DecoderFactory.get().binaryDecoder(data, 5, data.length - 5, decoder);
            try {
                return reader.read(null, decoder);
            } catch (IOException e) {
                throw new SerializationException("avro decode", e);
            }
        }
    }

    static final class Ser implements Serializer<GenericRecord> {
        private final GenericDatumWriter<GenericRecord> writer;
        private final int id;
        private BinaryEncoder encoder;

        Ser(Schema schema, int id) {
            this.writer = new GenericDatumWriter<>(schema);
            this.id = id;
        }

        @Override
        public byte[] serialize(String topic, GenericRecord value) {
            if (value == null) {
                return null;
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream(128);
            out.write(0);
            out.writeBytes(ByteBuffer.allocate(4).putInt(id).array());
            encoder = EncoderFactory.get().binaryEncoder(out, encoder);
            try {
                writer.write(value, encoder);
                encoder.flush();
            } catch (IOException e) {
                throw new SerializationException("avro encode", e);
            }
            return out.toByteArray();
        }
    }
}
