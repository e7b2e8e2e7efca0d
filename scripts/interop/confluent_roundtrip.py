#!/usr/bin/env python3
"""Interoperability check with a Kafka client no one on the finstream team wrote.

Confluent's Python client (confluent-kafka with its SchemaRegistryClient, AvroSerializer and
AvroDeserializer) registers the `.avsc` contract in finstream's registry, writes `transactions`
records, then reads the derived topic finstream wrote and prints what it decoded.

Usage: confluent_roundtrip.py BOOTSTRAP REGISTRY_URL INPUT_JSON OUTPUT_TOPIC EXPECTED OUTPUT_JSON

INPUT_JSON is a list of transactions with `amount` as a decimal string and `occurred_at` in epoch
milliseconds; they are sent as decimal.Decimal and timezone-aware datetime values so the Avro
logical types are exercised. OUTPUT_JSON receives one object per derived record, decimals as
strings and timestamps as epoch milliseconds.
"""
import datetime
import decimal
import json
import pathlib
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, StringSerializer

AVRO_DIR = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "avro"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def to_millis(value):
    if isinstance(value, datetime.datetime):
        return round((value - EPOCH).total_seconds() * 1000)
    return value


def plain(value):
    """Decoded Avro → JSON: decimals as exact strings, datetimes as epoch millis."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return to_millis(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def main():
    bootstrap, registry_url, input_json, output_topic, expected, output_json = sys.argv[1:7]
    registry = SchemaRegistryClient({"url": registry_url})
    schema = (AVRO_DIR / "TransactionEvent.avsc").read_text()
    serialize = AvroSerializer(registry, schema)
    keys = StringSerializer("utf_8")

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for tx in json.loads(pathlib.Path(input_json).read_text()):
        tx["amount"] = decimal.Decimal(tx["amount"])
        tx["occurred_at"] = EPOCH + datetime.timedelta(milliseconds=tx["occurred_at"])
        value = serialize(tx, SerializationContext("transactions", MessageField.VALUE))
        producer.produce("transactions", key=keys(tx["account_id"]), value=value, timestamp=to_millis(tx["occurred_at"]))
    if producer.flush(30) != 0:
        sys.exit("transactions were not all delivered")

    deserialize = AvroDeserializer(registry)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "python-interop",
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
    })
    consumer.subscribe([output_topic])
    out, deadline = [], time.time() + 90
    while len(out) < int(expected) and time.time() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        record = deserialize(msg.value(), SerializationContext(output_topic, MessageField.VALUE))
        out.append({"key": msg.key().decode(), "value": plain(record)})
    consumer.close()
    pathlib.Path(output_json).write_text(json.dumps(out))
    print(f"python: wrote {len(out)} decoded {output_topic} records")


if __name__ == "__main__":
    main()
