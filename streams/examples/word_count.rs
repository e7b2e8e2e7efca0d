//! Word count in the DSL: lines in, a running count per word out, the counts in a queryable
//! store. `cargo run -p streams --example word_count` runs it on the test driver.

use streams::dsl::{Consumed, DslError, Grouped, Produced};
use streams::store::query::QuerySpec;
use streams::{I64Serde, KvStoreDef, StreamsBuilder, StringSerde, Topology};

/// word → occurrences so far.
pub const WORD_COUNTS: KvStoreDef<String, i64> =
    KvStoreDef::new("word-counts", &StringSerde, &I64Serde).queryable(QuerySpec::string_keys());

pub fn topology(lines: &str, counts: &str) -> Result<Topology, DslError> {
    let builder = StreamsBuilder::new();
    builder
        .stream(lines, Consumed::with(StringSerde, StringSerde))
        .flat_map_values(|line: String| line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>())
        .select_key(|_, word| word.clone())
        .group_by_key(Grouped::with("words", StringSerde, StringSerde))
        .count(&WORD_COUNTS)
        .to_stream()
        .to(counts, Produced::with(StringSerde, I64Serde));
    builder.build()
}

fn main() {
    let topology = topology("lines", "word-counts").expect("valid topology").build("wordcount").expect("builds");
    println!("{}", topology.describe());
    let mut driver = streams::TopologyTestDriver::new(topology, Default::default()).expect("driver starts");
    for (i, line) in ["the quick brown fox", "jumps over the lazy dog", "The End"].iter().enumerate() {
        let key = format!("line-{i}");
        driver.pipe("lines", &key, &line.to_string(), i as i64, &StringSerde, &StringSerde).expect("processes");
    }
    for (word, count) in driver.store(&WORD_COUNTS) {
        println!("{word}: {count}");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use streams::{Crash, DriverConfig, TopologyTestDriver};

    use super::*;

    fn run(config: DriverConfig, lines: &[String]) -> (Vec<(String, i64)>, usize) {
        let topology = topology("lines", "counts").unwrap().build("wc").unwrap();
        let mut d = TopologyTestDriver::new(topology, config).unwrap();
        for (i, l) in lines.iter().enumerate() {
            d.append_raw("lines", Some(format!("l{}", i % 5).into_bytes()), Some(l.clone().into_bytes()), i as i64);
        }
        d.run().unwrap();
        assert_eq!(d.read_raw("counts").len(), lines.iter().map(|l| l.split_whitespace().count()).sum::<usize>());
        (d.store(&WORD_COUNTS), d.crashes_done)
    }

    #[test]
    fn counts_every_word_once_with_and_without_crashes() {
        let words = ["alpha", "Beta", "gamma", "beta", "delta"];
        let lines: Vec<String> =
            (0..120).map(|i| (0..i % 4 + 1).map(|j| words[(i + j) % 5]).collect::<Vec<_>>().join(" ")).collect();
        let mut expected = BTreeMap::<String, i64>::new();
        for w in lines.iter().flat_map(|l| l.split_whitespace()) {
            *expected.entry(w.to_lowercase()).or_default() += 1;
        }
        let base = DriverConfig { commit_every: 9, ..Default::default() };
        let (straight, _) = run(base.clone(), &lines);
        assert_eq!(straight, expected.into_iter().collect::<Vec<_>>());
        for kind in Crash::ALL {
            let crashed = run(DriverConfig { crashes: vec![(20, kind), (150, kind)], ..base.clone() }, &lines);
            assert_eq!(crashed, (straight.clone(), 2), "{kind:?}");
        }
    }
}
