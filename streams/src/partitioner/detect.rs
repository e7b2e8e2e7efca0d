//! Telling from a topic's records which partitioner placed them, and the persisted verdict.
//!
//! Each keyed record says something: it sits on some partition, and each candidate partitioner
//! predicts one for its key. Where every candidate predicts that partition the record is
//! ambiguous and counts for nothing (with one partition, every record is). Where none does, a
//! producer placed it by other means (round-robin, random, an explicit partition): it is
//! unexplained. Otherwise it is evidence for the candidates that predicted it and against the
//! others. A verdict is only given when it is unambiguous: one candidate explains every
//! discriminating record and beats each other candidate on at least `min_evidence` of them
//! ([`Detection::Clean`]); or, for a topic fed by several producers, one candidate explains
//! clearly more than the others ([`Detection::Mixed`]: its records are placed, the rest are
//! re-placed by the engine); otherwise there is not enough evidence ([`Detection::Undecided`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{is_placed_key, Partitioner};

const N: usize = Partitioner::ALL.len();

/// Records each candidate must win by, against each other candidate, before a verdict: with
/// one partition in two to guess right by chance, 16 leaves a 1-in-65536 chance of a wrong one.
pub const MIN_EVIDENCE: u64 = 16;

/// What a topic's records said about their partitioner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Records with a non-empty key (null and empty keys are not placed by any client).
    pub keyed: u64,
    /// Keyed records on the partition every candidate predicts.
    pub ambiguous: u64,
    /// Keyed records on a partition no candidate predicts.
    pub unexplained: u64,
    /// Per candidate: discriminating records on the partition it predicts.
    pub hits: BTreeMap<Partitioner, u64>,
    /// `wins[a][b]`: records `a` predicts and `b` does not (rows and columns in
    /// [`Partitioner::ALL`] order).
    pub wins: [[u64; N]; N],
}

impl Evidence {
    /// Keyed records that are neither ambiguous nor unexplained.
    pub fn discriminating(&self) -> u64 {
        self.keyed - self.ambiguous - self.unexplained
    }

    fn hits_of(&self, p: Partitioner) -> u64 {
        self.hits.get(&p).copied().unwrap_or(0)
    }

    /// Whether `p` beats every other candidate on at least `min` records.
    fn separated(&self, p: Partitioner, min: u64) -> bool {
        Partitioner::ALL.iter().filter(|q| **q != p).all(|q| self.wins[p.index()][q.index()] >= min)
    }

    /// The verdict, with `min_evidence` records needed against each other candidate.
    pub fn detect(&self, min_evidence: u64) -> Detection {
        let discriminating = self.discriminating();
        let consistent: Vec<Partitioner> =
            Partitioner::ALL.into_iter().filter(|p| discriminating > 0 && self.hits_of(*p) == discriminating).collect();
        if let [only] = consistent[..] {
            if self.unexplained == 0 && self.separated(only, min_evidence) {
                return Detection::Clean(only);
            }
        }
        // Several producers (or one that does not hash keys): the candidate that placed the
        // most records, if it clearly beats each other one.
        let best = Partitioner::ALL.into_iter().max_by_key(|p| (self.hits_of(*p), std::cmp::Reverse(p.index())));
        match best {
            Some(best) if self.separated(best, min_evidence) => Detection::Mixed { majority: best },
            _ => Detection::Undecided,
        }
    }
}

/// A verdict from [`Evidence::detect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// Every discriminating record was placed by this partitioner.
    Clean(Partitioner),
    /// Records follow several partitioners, or none; `majority` placed the most of them.
    /// Records of key-placed sources that it does not explain are re-placed by the engine.
    Mixed { majority: Partitioner },
    /// Too few discriminating records to tell (an empty topic, one partition, few keys).
    Undecided,
}

/// Counts, for one topic, which candidate predicts where its records are.
#[derive(Debug, Clone)]
pub struct PartitionerDetector {
    partitions: i32,
    evidence: Evidence,
}

impl PartitionerDetector {
    /// A detector for a topic with `partitions` partitions.
    pub fn new(partitions: i32) -> Self {
        PartitionerDetector { partitions: partitions.max(1), evidence: Evidence::default() }
    }

    /// Counts one record: its key and the partition it was read from.
    pub fn observe(&mut self, key: Option<&[u8]>, partition: i32) {
        if !is_placed_key(key) {
            return;
        }
        let key = key.unwrap_or_default();
        let e = &mut self.evidence;
        e.keyed += 1;
        let hit: [bool; N] = Partitioner::ALL.map(|p| p.partition(key, self.partitions) == partition);
        if hit.iter().all(|h| *h) {
            e.ambiguous += 1;
            return;
        }
        if hit.iter().all(|h| !*h) {
            e.unexplained += 1;
            return;
        }
        for (a, pa) in Partitioner::ALL.iter().enumerate() {
            if !hit[a] {
                continue;
            }
            *e.hits.entry(*pa).or_default() += 1;
            for (b, hit_b) in hit.iter().enumerate() {
                if !hit_b {
                    e.wins[a][b] += 1;
                }
            }
        }
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    pub fn evidence(&self) -> &Evidence {
        &self.evidence
    }
}

/// Why a topic has the partitioner it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionBasis {
    /// Detected from the topic's records, all placed by one partitioner.
    Detected,
    /// Detected from the topic's records, most of them placed by this partitioner.
    Mixed,
    /// Set by the operator.
    Configured,
    /// No evidence when the application first started: a wildcard that takes the partitioner
    /// of the topics it is co-partitioned with, or murmur2 when none has evidence.
    Default,
}

/// The partitioner of one user source topic, as decided once and then persisted so every
/// instance and every restart agree: a later change would move keys between tasks and split
/// their state. See [`first_decisions`] for the first-writer-wins rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionerDecision {
    pub topic: String,
    pub partitioner: Partitioner,
    pub basis: DecisionBasis,
    /// Partition count the evidence was counted against.
    pub partitions: i32,
    pub evidence: Evidence,
}

impl PartitionerDecision {
    /// Decides `topic`'s partitioner: the operator's choice if `configured`, else the records'
    /// verdict (needing [`MIN_EVIDENCE`] records), else [`DecisionBasis::Default`].
    pub fn decide(topic: &str, detector: &PartitionerDetector, configured: Option<Partitioner>) -> Self {
        let evidence = detector.evidence().clone();
        let (partitioner, basis) = match (configured, evidence.detect(MIN_EVIDENCE)) {
            (Some(p), _) => (p, DecisionBasis::Configured),
            (None, Detection::Clean(p)) => (p, DecisionBasis::Detected),
            (None, Detection::Mixed { majority }) => (majority, DecisionBasis::Mixed),
            (None, Detection::Undecided) => (Partitioner::Murmur2, DecisionBasis::Default),
        };
        PartitionerDecision {
            topic: topic.to_string(),
            partitioner,
            basis,
            partitions: detector.partitions(),
            evidence,
        }
    }

    /// Whether the decision rests on the topic's records or the operator (not a wildcard).
    pub fn is_binding(&self) -> bool {
        self.basis != DecisionBasis::Default
    }

    /// A warning for the log when the decision is not clean: mixed producers, or an operator
    /// choice the records contradict.
    pub fn warning(&self) -> Option<String> {
        let e = &self.evidence;
        match self.basis {
            DecisionBasis::Mixed => Some(format!(
                "topic {} is written by producers with different partitioners: of {} keyed records {} are where \
                 {} puts them, {} where no known partitioner does; finstream uses {} and re-places the others \
                 through placement topics (finstream_misplaced_records_total). Fix: configure every producer of \
                 {} with {}",
                self.topic,
                e.keyed,
                e.hits_of(self.partitioner) + e.ambiguous,
                self.partitioner,
                e.unexplained,
                self.partitioner,
                self.topic,
                self.partitioner.producer_setting()
            )),
            DecisionBasis::Configured => match e.detect(MIN_EVIDENCE) {
                Detection::Clean(p) | Detection::Mixed { majority: p } if p != self.partitioner => Some(format!(
                    "topic {} is configured with partitioner {} but its records were placed by {}: records will \
                     be re-placed, or split between tasks for sources that are not key-placed. Fix: set the \
                     partitioner to {p} or configure the producers with {}",
                    self.topic,
                    self.partitioner,
                    p,
                    self.partitioner.producer_setting()
                )),
                _ => None,
            },
            DecisionBasis::Detected | DecisionBasis::Default => None,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a decision always serializes")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// First writer wins: given the records of the decisions topic in log order, the first
/// well-formed decision per topic. Instances that race at their first start each write theirs
/// and then read the log back; all of them adopt the first. (So the decisions topic must keep
/// every record: `cleanup.policy=delete` with unlimited retention, not compaction, which would
/// keep the last.)
pub fn first_decisions<'a>(log: impl IntoIterator<Item = &'a [u8]>) -> BTreeMap<String, PartitionerDecision> {
    let mut out = BTreeMap::new();
    for bytes in log {
        if let Ok(d) = PartitionerDecision::from_json(bytes) {
            out.entry(d.topic.clone()).or_insert(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed_by(producers: &[(Partitioner, usize)], partitions: i32) -> PartitionerDetector {
        let mut d = PartitionerDetector::new(partitions);
        let mut i = 0;
        for &(p, count) in producers {
            for _ in 0..count {
                let key = format!("account-{i}");
                d.observe(Some(key.as_bytes()), p.partition(key.as_bytes(), partitions));
                i += 1;
            }
        }
        d
    }

    #[test]
    fn one_producer_is_detected_for_each_partitioner() {
        for p in Partitioner::ALL {
            let d = fed_by(&[(p, 200)], 8);
            assert_eq!(d.evidence().detect(MIN_EVIDENCE), Detection::Clean(p), "{p}");
            let decision = PartitionerDecision::decide("t", &d, None);
            assert_eq!((decision.partitioner, decision.basis), (p, DecisionBasis::Detected));
            assert!(decision.warning().is_none());
        }
    }

    #[test]
    fn no_evidence_means_undecided() {
        assert_eq!(fed_by(&[], 8).evidence().detect(MIN_EVIDENCE), Detection::Undecided);
        // One partition: every record is ambiguous.
        let one = fed_by(&[(Partitioner::Crc32, 100)], 1);
        assert_eq!(one.evidence().ambiguous, 100);
        assert_eq!(one.evidence().detect(MIN_EVIDENCE), Detection::Undecided);
        // A handful of records is not enough.
        assert_eq!(fed_by(&[(Partitioner::Crc32, 5)], 8).evidence().detect(MIN_EVIDENCE), Detection::Undecided);
        let d = PartitionerDecision::decide("t", &fed_by(&[], 4), None);
        assert_eq!((d.partitioner, d.basis), (Partitioner::Murmur2, DecisionBasis::Default));
        assert!(!d.is_binding());
    }

    #[test]
    fn null_and_empty_keys_are_not_evidence() {
        let mut d = PartitionerDetector::new(4);
        d.observe(None, 3);
        d.observe(Some(b""), 2);
        assert_eq!(d.evidence().keyed, 0);
    }

    #[test]
    fn mixed_producers_give_the_majority_with_a_warning() {
        let d = fed_by(&[(Partitioner::Crc32, 300), (Partitioner::Murmur2, 100)], 6);
        assert_eq!(d.evidence().detect(MIN_EVIDENCE), Detection::Mixed { majority: Partitioner::Crc32 });
        let decision = PartitionerDecision::decide("transactions", &d, None);
        assert_eq!(decision.basis, DecisionBasis::Mixed);
        let w = decision.warning().unwrap();
        assert!(w.contains("transactions") && w.contains("consistent_random"), "{w}");
    }

    #[test]
    fn round_robin_records_are_unexplained() {
        let mut d = PartitionerDetector::new(4);
        for i in 0..400 {
            d.observe(Some(format!("k{i}").as_bytes()), i % 4);
        }
        let e = d.evidence();
        assert!(e.unexplained > 100, "{e:?}");
        // Round-robin agrees with each hash about as often as chance: no candidate wins.
        assert_ne!(e.detect(MIN_EVIDENCE), Detection::Clean(Partitioner::Murmur2));
    }

    #[test]
    fn configured_wins_and_warns_when_contradicted() {
        let d = fed_by(&[(Partitioner::Crc32, 200)], 8);
        let decision = PartitionerDecision::decide("budgets", &d, Some(Partitioner::Murmur2));
        assert_eq!((decision.partitioner, decision.basis), (Partitioner::Murmur2, DecisionBasis::Configured));
        assert!(decision.warning().unwrap().contains("crc32"));
    }

    #[test]
    fn first_writer_wins_and_round_trips() {
        let a = PartitionerDecision::decide("t", &fed_by(&[(Partitioner::Crc32, 100)], 4), None);
        let b = PartitionerDecision::decide("t", &fed_by(&[(Partitioner::Murmur2, 100)], 4), None);
        let c = PartitionerDecision::decide("u", &fed_by(&[], 4), None);
        let log = [a.to_json(), b"not json".to_vec(), b.to_json(), c.to_json()];
        let got = first_decisions(log.iter().map(|v| v.as_slice()));
        assert_eq!(got["t"], a);
        assert_eq!(got["u"], c);
        assert_eq!(PartitionerDecision::from_json(&a.to_json()).unwrap(), a);
    }
}
