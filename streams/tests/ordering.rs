//! Within a task, records of co-partitioned inputs are processed in timestamp order.

use streams::{
    DriverConfig, ProcessError, Processor, ProcessorContext, Record, StringSerde, Topology, TopologyTestDriver,
};

struct Tag(&'static str);

impl Processor<String, String> for Tag {
    fn process(&mut self, r: Record<String, String>, ctx: &mut ProcessorContext<'_>) -> Result<(), ProcessError> {
        let v = format!("{}:{}", self.0, r.value);
        ctx.forward(r.with_value(v))
    }
}

#[test]
fn two_inputs_of_one_task_interleave_by_timestamp() {
    let mut t = Topology::new();
    t.add_source::<String, String>("a", &["a"], StringSerde, StringSerde)
        .unwrap()
        .add_source::<String, String>("b", &["b"], StringSerde, StringSerde)
        .unwrap()
        .add_processor("tag-a", || Tag("a"), &["a"])
        .unwrap()
        .add_processor("tag-b", || Tag("b"), &["b"])
        .unwrap()
        .add_sink::<String, String>("out", "out", StringSerde, StringSerde, &["tag-a", "tag-b"])
        .unwrap();
    // Both sources feed one sink, so they form one sub-topology: one task per partition.
    let topo = t.build("o").unwrap();
    assert_eq!(topo.subtopologies.len(), 1);
    let mut d = TopologyTestDriver::new(topo, DriverConfig { partitions: 1, ..Default::default() }).unwrap();
    for (topic, v, ts) in [("a", "1", 10), ("a", "2", 30), ("b", "3", 20), ("b", "4", 40)] {
        d.append_raw(topic, Some(b"k".to_vec()), Some(v.as_bytes().to_vec()), ts);
    }
    d.run().unwrap();
    let out: Vec<String> =
        d.read_output::<String, String>("out", &StringSerde, &StringSerde).into_iter().map(|r| r.value).collect();
    assert_eq!(out, vec!["a:1", "b:3", "a:2", "b:4"]);
}
