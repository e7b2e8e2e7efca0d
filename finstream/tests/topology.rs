//! `finstream topology` prints the shipped finance topology as the engine builds it, with every
//! store, repartition and changelog topic a deployment has to know about.

use std::process::Command;

#[test]
fn finstream_topology_prints_the_built_finance_topology() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_finstream")).arg("topology").env_remove("FINSTREAM_CONFIG").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();

    let config = finstream::config::load(None).unwrap();
    let topology = finstream::app::built_topology(&config).unwrap();
    assert_eq!(printed, topology.describe());
    assert!(printed.starts_with("Topologies:\n"), "{printed}");
    assert!(topology.subtopologies.len() > 1, "the finance topology has several sub-topologies");
    for s in &topology.subtopologies {
        assert!(printed.contains(&format!("Sub-topology: {}", s.id)), "sub-topology {} missing:\n{printed}", s.id);
        for store in &s.stores {
            assert!(printed.contains(store.as_str()), "store {store} missing");
        }
    }
    for t in &topology.repartition_topics {
        assert!(printed.contains(t.as_str()), "repartition topic {t} missing");
    }
    for (_, t) in topology.changelog_topics() {
        assert!(printed.contains(t.as_str()), "changelog topic {t} missing");
    }
    for store in [processors::stores::BALANCES, processors::stores::GOALS] {
        assert!(printed.contains(store), "{store} missing");
    }
}
