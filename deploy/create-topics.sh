#!/usr/bin/env bash
# Creates finstream's input, output and dead-letter topics on a cluster that does not auto-create
# them (docker-compose.yml runs it once). The application's internal topics (changelogs,
# repartition topics, the commit log) are created by finstream itself, with partition counts
# matching these. finstream/tests/deploy.rs checks this list against the topology's topic plan.
set -euo pipefail
BOOTSTRAP=${1:-localhost:9092}
PARTITIONS=${PARTITIONS:-4}
REPLICATION=${REPLICATION:-1}
KAFKA_TOPICS=${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}

# name:cleanup.policy
TOPICS="
account-balances:delete
accounts:delete
accounts-dlq:delete
budget-alerts:delete
budgets:delete
budgets-dlq:delete
exchange-rates:compact
financial-goals:delete
financial-goals-dlq:delete
fraud-scores:delete
goal-progress:delete
notifications:delete
spending-daily:delete
transactions:delete
transactions-dlq:delete
user-profile:compact
"

for entry in $TOPICS; do
  name=${entry%%:*}
  policy=${entry##*:}
  "$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$name" \
    --partitions "$PARTITIONS" --replication-factor "$REPLICATION" --config "cleanup.policy=$policy"
done
echo "topics ready"
