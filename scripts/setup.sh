#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test finstream: libclang (bindgen for RocksDB),
# a C/C++ toolchain (RocksDB and librdkafka are built from source by their crates), and a JDK with
# Maven (Apache Kafka runs from its Maven jars, see scripts/kafka.sh).
set -euo pipefail
need=()
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
command -v c++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v java >/dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
command -v python3 >/dev/null || need+=(python3 python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
