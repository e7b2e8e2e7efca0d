//! Feeds the connectors generator's events to the harness, one at a time in delivery order.

use connectors::Event;

use super::Harness;

impl Harness {
    /// Appends one generated event to its topic with its key and timestamp (not processed yet).
    pub fn append_event(&mut self, ev: &Event) {
        let (topic, key, ts) = (ev.topic(), ev.key().as_bytes().to_vec(), ev.timestamp().0);
        let bytes = match ev {
            Event::Rate(v) => self.encode(topic, v),
            Event::Profile(v) => self.encode(topic, v),
            Event::Account(v) => self.encode(topic, v),
            Event::Budget(v) => self.encode(topic, v),
            Event::Goal(v) => self.encode(topic, v),
            Event::Transaction(v) => self.encode(topic, v),
        };
        self.d.append_raw(topic, Some(key), Some(bytes), ts);
    }

    /// Appends and processes each event to quiescence before the next one, so every processor
    /// sees the events in delivery order (global tables included: they update on append).
    pub fn pipe_events(&mut self, events: &[Event]) {
        for ev in events {
            self.append_event(ev);
            self.d.run().unwrap();
        }
    }
}
