//! The one home of key → partition.
//!
//! Kafka clients do not agree on where a key goes. The Java client (and so Kafka Streams and
//! every JVM producer) hashes with murmur2; librdkafka — the client under Python's
//! confluent-kafka, Go's confluent-kafka-go, .NET, C/C++ and kcat — defaults to
//! `consistent_random`, a CRC-32; sarama (Go) hashes with FNV-1a. finstream must place keys
//! exactly where its producers did, or an account's debits and credits meet in different tasks
//! and the query API reads a store that does not hold the key. So:
//! - [`Partitioner`] computes each client's partition, bit for bit;
//! - [`PartitionerDetector`] tells from a topic's records which one placed them, and
//!   [`PartitionerDecision`] is that verdict in a form every instance persists and agrees on;
//! - [`PartitionPlan`] gives each sub-topology its partitioner P (from its user source topics):
//!   the engine's repartition sinks into that sub-topology, the placement check of key-placed
//!   sources and query routing all use P. Outputs to user topics keep murmur2, because
//!   downstream Java consumers (and Kafka Streams applications joining them) expect it.
//!
//! Keys that are null or empty are not placed by any of these clients (`consistent_random`
//! sends both to a random partition, the Java client sends a null key to its sticky
//! partition), so they are never evidence and never "misplaced".

mod detect;
mod plan;

pub use detect::{first_decisions, DecisionBasis, Detection, Evidence, PartitionerDecision, PartitionerDetector};
pub use plan::{PartitionPlan, PlanError, SubPartitioning};

use serde::{Deserialize, Serialize};

/// A producer's key → partition function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Partitioner {
    /// The Java client's default (`Utils.toPositive(Utils.murmur2(key)) % n`), also librdkafka's
    /// `murmur2` / `murmur2_random`. What finstream's own producers and Kafka Streams use.
    Murmur2,
    /// librdkafka's `consistent_random` (the default of every librdkafka-based client) and
    /// `consistent`: CRC-32 (ISO-HDLC, as zlib's `crc32`) of the key, unsigned, modulo `n`.
    Crc32,
    /// sarama's default `HashPartitioner` and librdkafka's `fnv1a` / `fnv1a_random`: FNV-1a
    /// 32-bit, read as a signed integer and made positive, modulo `n`.
    Fnv1a,
}

impl Partitioner {
    /// Every partitioner detection considers, in a fixed order (evidence arrays follow it).
    pub const ALL: [Partitioner; 3] = [Partitioner::Murmur2, Partitioner::Crc32, Partitioner::Fnv1a];

    /// The name used in configuration, metrics and persisted decisions.
    pub fn name(self) -> &'static str {
        match self {
            Partitioner::Murmur2 => "murmur2",
            Partitioner::Crc32 => "crc32",
            Partitioner::Fnv1a => "fnv1a",
        }
    }

    /// Our names, plus librdkafka's `partitioner` values (`consistent_random`, `murmur2_random`, ...).
    pub fn parse(name: &str) -> Option<Partitioner> {
        match name.trim().to_ascii_lowercase().as_str() {
            "murmur2" | "murmur2_random" | "java" | "default_java" => Some(Partitioner::Murmur2),
            "crc32" | "consistent" | "consistent_random" | "librdkafka" => Some(Partitioner::Crc32),
            "fnv1a" | "fnv1a_random" | "sarama" => Some(Partitioner::Fnv1a),
            _ => None,
        }
    }

    /// The index of this partitioner in [`Partitioner::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The partition this partitioner's producers send a non-empty `key` to.
    pub fn partition(self, key: &[u8], partitions: i32) -> i32 {
        let n = partitions.max(1) as u32;
        let p = match self {
            Partitioner::Murmur2 => (murmur2(key) & 0x7fff_ffff) as u32 % n,
            Partitioner::Crc32 => crc32(key) % n,
            // librdkafka: `abs((int32_t) h) % n` on the unsigned value (Sarama's rule); the
            // absolute value of i32::MIN stays 0x80000000 there as here.
            Partitioner::Fnv1a => ((fnv1a(key) as i32).wrapping_abs() as u32) % n,
        };
        p as i32
    }

    /// How to configure a producer to use this partitioner, for messages that name the fix.
    pub fn producer_setting(self) -> &'static str {
        match self {
            Partitioner::Murmur2 => "the Java client's default partitioner, or `partitioner=murmur2_random` in librdkafka-based clients (Python, Go, .NET, kcat)",
            Partitioner::Crc32 => "librdkafka's default `partitioner=consistent_random` (Python confluent-kafka, confluent-kafka-go, .NET, kcat)",
            Partitioner::Fnv1a => "sarama's default HashPartitioner, or `partitioner=fnv1a_random` in librdkafka-based clients",
        }
    }
}

impl std::fmt::Display for Partitioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Partitioner {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Partitioner::parse(s).ok_or_else(|| {
            format!("unknown partitioner {s:?} (expected murmur2, crc32 or fnv1a, or a librdkafka name)")
        })
    }
}

/// Whether a key is placed by its producer at all: null and empty keys are not.
pub fn is_placed_key(key: Option<&[u8]>) -> bool {
    key.is_some_and(|k| !k.is_empty())
}

/// Kafka's murmur2 variant (seed 0x9747b28c), identical to `org.apache.kafka.common.utils.Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= (tail[2] as u32) << 16;
            h ^= (tail[1] as u32) << 8;
            h ^= tail[0] as u32;
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= (tail[1] as u32) << 8;
            h ^= tail[0] as u32;
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= tail[0] as u32;
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java producer picks for a non-null key (murmur2).
pub fn murmur2_partition(key: &[u8], partitions: i32) -> i32 {
    Partitioner::Murmur2.partition(key, partitions)
}

/// CRC-32/ISO-HDLC (reflected polynomial 0xEDB88320, init and final xor 0xFFFFFFFF): librdkafka's
/// `rd_crc32`, which is zlib's `crc32` when librdkafka is built with zlib and a pycrc table with
/// the same parameters otherwise.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c = CRC_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    c ^ 0xffff_ffff
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// FNV-1a, 32 bits (offset basis 0x811C9DC5, prime 0x01000193), as Go's `hash/fnv.New32a`.
pub fn fnv1a(data: &[u8]) -> u32 {
    let mut h = 0x811c_9dc5u32;
    for &b in data {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from the Java client's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_java_client() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input), expected, "{:?}", std::str::from_utf8(input));
        }
    }

    /// librdkafka's `unittest_murmur2` (values it took from the Java client) and
    /// `unittest_fnv1a` (values from Go's hash/fnv, made positive as Sarama does).
    #[test]
    fn murmur2_and_fnv1a_match_librdkafka_unit_tests() {
        let keys =
            ["kafka", "giberish123456789", "1234", "234", "34", "4", "", "PreAmbleWillBeRemoved,ThePrePartThatIs"];
        let murmur: [u32; 8] =
            [0xd067cf64, 0x8f552b0c, 0x9fc97b14, 0xe7c009ca, 0x873930da, 0x5a4b5ca1, 0x106e08d9, 0x78424f1c];
        let fnv: [u32; 8] =
            [0x0d33c4e1, 0x77a58295, 0x023bdd03, 0x2dea3cd2, 0x740fa83e, 0x310ca263, 0x7ee3623b, 0x65cbd69c];
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(murmur2(key.as_bytes()) as u32, murmur[i], "murmur2({key:?})");
            assert_eq!((fnv1a(key.as_bytes()) as i32).wrapping_abs() as u32, fnv[i], "fnv1a({key:?})");
        }
        // The raw FNV-1a of "" is the offset basis, negative as an i32: the absolute value is
        // what librdkafka and Sarama take.
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
    }

    /// The published CRC-32 check value and zlib's well-known results.
    #[test]
    fn crc32_is_iso_hdlc() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"The quick brown fox jumps over the lazy dog"), 0x414f_a339);
    }

    #[test]
    fn partitions_follow_each_clients_rule() {
        // "kafka": murmur2 0xd067cf64 & 0x7fffffff = 0x5067cf64 = 1348980580.
        assert_eq!(Partitioner::Murmur2.partition(b"kafka", 10), (0x5067_cf64u32 % 10) as i32);
        assert_eq!(Partitioner::Crc32.partition(b"123456789", 7), (0xcbf4_3926u32 % 7) as i32);
        assert_eq!(Partitioner::Fnv1a.partition(b"kafka", 6), (0x0d33_c4e1u32 % 6) as i32);
        // A key whose FNV-1a is negative as i32 is made positive before the modulo:
        // fnv1a("") = 0x811c9dc5 → 0x7ee3623b.
        assert_eq!(Partitioner::Fnv1a.partition(b"", 1000), (0x7ee3_623bu32 % 1000) as i32);
        for p in Partitioner::ALL {
            for n in 1..20 {
                let got = p.partition(b"account-42", n);
                assert!((0..n).contains(&got), "{p} {n} {got}");
            }
        }
    }

    #[test]
    fn names_round_trip_and_accept_librdkafka_names() {
        for p in Partitioner::ALL {
            assert_eq!(Partitioner::parse(p.name()), Some(p));
            assert_eq!(p.index(), Partitioner::ALL.iter().position(|q| *q == p).unwrap());
        }
        assert_eq!(Partitioner::parse("consistent_random"), Some(Partitioner::Crc32));
        assert_eq!(Partitioner::parse("murmur2_random"), Some(Partitioner::Murmur2));
        assert_eq!(Partitioner::parse("fnv1a_random"), Some(Partitioner::Fnv1a));
        assert_eq!(Partitioner::parse("random"), None);
        let json = serde_json::to_string(&Partitioner::Crc32).unwrap();
        assert_eq!(json, "\"crc32\"");
    }
}
