//! Labelled fraud scenarios (card testing, impossible travel, account drain, large anomalous
//! purchase) mixed into a user's day; labels go to `Generator::labels`, never into events.

use super::*;

impl Generator {
    pub(super) fn fraud(&mut self, u: usize, date: NaiveDate, items: &mut Vec<Item>) {
        let tz = self.users[u].home_tz;
        self.scenario_counter += 1;
        let scenario = match self.rng.random_range(0..4) {
            0 => FraudScenario::CardTesting,
            1 => FraudScenario::ImpossibleTravel,
            2 => FraudScenario::AccountDrain,
            _ => FraudScenario::LargeAnomalousPurchase,
        };
        let flags = Flags { fraud: Some(scenario), ..Flags::default() };
        let cur = self.users[u].accounts[0].currency;
        match scenario {
            FraudScenario::CardTesting => {
                let mut ts = local_ts(tz, date, self.time_of_day(2, 4));
                for _ in 0..self.rng.random_range(6..12) {
                    let usd = self.rng.random_range(0.5..2.0);
                    let amount = self.money(usd, cur);
                    let mut t =
                        self.txn_in(u, 0, TransactionKind::Payment, amount, cur, Category::Shopping, Channel::Online);
                    t.merchant = Some(Merchant {
                        merchant_id: "m-x-giftcards".into(),
                        name: "QuickGiftCards".into(),
                        mcc: "5999".into(),
                    });
                    if self.chance(0.5) {
                        t.status = TransactionStatus::Failed;
                    }
                    items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags });
                    ts += self.rng.random_range(20..90) * SECOND;
                }
            }
            FraudScenario::ImpossibleTravel => {
                // The cardholder's own purchase (not fraud, not labelled), then the stolen card
                // used far away shortly after: only that one is fraudulent.
                let ts = local_ts(tz, date, self.time_of_day(10, 18));
                let usd = self.rng.random_range(20.0..80.0);
                let amount = self.money(usd, cur);
                let t = self.txn_in(u, 0, TransactionKind::Payment, amount, cur, Category::Shopping, Channel::Card);
                items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags: Flags::default() });
                let far = &TRIPS[self.rng.random_range(0..3)];
                let usd = self.rng.random_range(100.0..600.0);
                let amount = self.money(usd, far.currency);
                let mut t = self.txn_in(
                    u,
                    0,
                    TransactionKind::Payment,
                    amount,
                    far.currency,
                    Category::Shopping,
                    Channel::Card,
                );
                t.location =
                    Some(Location { country: far.country.into(), city: far.city.into(), lat: far.lat, lon: far.lon });
                let later = ts + self.rng.random_range(20..60) * MINUTE;
                items.push(Item { ts: later, ev: Event::Transaction(t), account: 0, flags });
            }
            FraudScenario::AccountDrain => {
                // Steps of 30-50 % of what is left; the last one takes the rest (90 % in all).
                let mut ts = local_ts(tz, date, self.time_of_day(1, 4));
                let mut left = self.users[u].accounts[0].safe_usd.max(500.0) * 0.9;
                let steps = self.rng.random_range(3..6);
                for i in 0..steps {
                    let share = self.between(0.3, 0.5);
                    let usd = if i + 1 == steps { left } else { left * share };
                    left -= usd;
                    let t = if i % 2 == 0 {
                        let mut t = self.txn(u, 0, TransactionKind::Transfer, usd, Category::Other, Channel::Online);
                        t.counterparty_account_id = Some(self.id(format!("ext-{:05}", self.scenario_counter)));
                        t
                    } else {
                        self.txn(u, 0, TransactionKind::Withdrawal, usd, Category::Other, Channel::Atm)
                    };
                    items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags });
                    ts += self.rng.random_range(2..10) * MINUTE;
                }
            }
            FraudScenario::LargeAnomalousPurchase => {
                // Stolen card details spent online at a shop the cardholder never used.
                let ts = local_ts(tz, date, self.time_of_day(0, 24));
                let usd = self.between(2000.0, 6000.0);
                let mut t = self.txn(u, 0, TransactionKind::Payment, usd, Category::Shopping, Channel::Online);
                t.merchant = Some(Merchant {
                    merchant_id: "m-x-electronics".into(),
                    name: "GadgetHub Online".into(),
                    mcc: "5732".into(),
                });
                items.push(Item { ts, ev: Event::Transaction(t), account: 0, flags });
            }
        }
    }
}
