#!/usr/bin/env python3
"""Produce contract events as a plain Python service would: confluent-kafka's Producer at its
default settings and Confluent's AvroSerializer.

Usage: produce_events.py BOOTSTRAP REGISTRY_URL EVENTS_JSONL TOPIC=SCHEMA [TOPIC=SCHEMA ...]

EVENTS_JSONL holds one object per line, `{"topic": ..., "key": ..., "record": {...}}`, in the
order to send. `record` is the Avro record as JSON: decimals as decimal strings, `timestamp-millis`
as epoch milliseconds, `date` as days since the epoch, enums as their symbols, unions as the
plain value or null. Each value is converted to what the Confluent serializer expects for the
logical types of its schema (decimal.Decimal, timezone-aware datetime, date), found by walking the
`.avsc`. SCHEMA is a file in schemas/avro/ (`TransactionEvent.avsc`) or a path; it is the value
schema of TOPIC, registered under `<topic>-value` by the serializer (TopicNameStrategy).

Nothing is tuned: the Producer gets only `bootstrap.servers`, so keys are placed by librdkafka's
default partitioner (consistent_random: CRC32 of the key), and no timestamp is given, so each
record's Kafka timestamp is the time it was sent. Keys are UTF-8 strings.
"""
import datetime
import decimal
import json
import pathlib
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

AVRO_DIR = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "avro"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
EPOCH_DATE = datetime.date(1970, 1, 1)
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


class Converter:
    """Converts JSON values to the Python values fastavro expects, following one schema."""

    def __init__(self, schema):
        self.named = {}
        self.schema = schema
        self._register(schema, None)

    def _register(self, t, namespace):
        if isinstance(t, list):
            for branch in t:
                self._register(branch, namespace)
        elif isinstance(t, dict):
            kind = t.get("type")
            if kind in ("record", "enum", "fixed"):
                ns = t.get("namespace", namespace)
                name = t["name"]
                full = name if "." in name or not ns else f"{ns}.{name}"
                self.named[full] = t
                self.named[name.rsplit(".", 1)[-1]] = t
                if kind == "record":
                    for field in t["fields"]:
                        self._register(field["type"], ns)
            elif kind == "array":
                self._register(t["items"], namespace)
            elif kind == "map":
                self._register(t["values"], namespace)
            elif isinstance(kind, (dict, list)):
                self._register(kind, namespace)

    def convert(self, t, value):
        if isinstance(t, str):
            if t in PRIMITIVES:
                return value
            return self.convert(self.named[t], value)
        if isinstance(t, list):
            if value is None:
                return None
            branches = [b for b in t if b != "null"]
            if len(branches) != 1:
                raise ValueError(f"union {t}: only [null, T] unions are supported")
            return self.convert(branches[0], value)
        logical = t.get("logicalType")
        if logical == "decimal":
            return decimal.Decimal(str(value))
        if logical == "timestamp-millis":
            return EPOCH + datetime.timedelta(milliseconds=int(value))
        if logical == "date":
            return EPOCH_DATE + datetime.timedelta(days=int(value))
        kind = t.get("type")
        if kind == "record":
            return {f["name"]: self.convert(f["type"], value.get(f["name"])) for f in t["fields"]}
        if kind == "array":
            return [self.convert(t["items"], v) for v in value]
        if kind == "map":
            return {k: self.convert(t["values"], v) for k, v in value.items()}
        if isinstance(kind, (dict, list)) or kind in PRIMITIVES:
            return value if kind in PRIMITIVES else self.convert(kind, value)
        return value  # enum, fixed


def schema_text(spec):
    path = pathlib.Path(spec)
    if not path.is_absolute() and not path.exists():
        path = AVRO_DIR / spec
    return path.read_text()


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    bootstrap, registry_url, events_path = sys.argv[1:4]
    registry = SchemaRegistryClient({"url": registry_url})
    per_topic = {}
    for arg in sys.argv[4:]:
        topic, spec = arg.split("=", 1)
        text = schema_text(spec)
        per_topic[topic] = (Converter(json.loads(text)), AvroSerializer(registry, text))

    failures = []

    def delivered(err, _msg):
        if err is not None:
            failures.append(str(err))

    producer = Producer({"bootstrap.servers": bootstrap})
    started, sent = time.time(), 0
    with open(events_path, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            event = json.loads(line)
            topic = event["topic"]
            converter, serialize = per_topic[topic]
            record = converter.convert(converter.schema, event["record"])
            value = serialize(record, SerializationContext(topic, MessageField.VALUE))
            key = event["key"].encode("utf-8") if event.get("key") is not None else None
            while True:
                try:
                    producer.produce(topic, key=key, value=value, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
            sent += 1
    left = producer.flush(120)
    if left or failures:
        sys.exit(f"python: {left} records undelivered, {len(failures)} failed: {failures[:5]}")
    print(f"python: produced {sent} records in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
