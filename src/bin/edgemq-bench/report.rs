//! Results as `name<TAB>value<TAB>unit` lines on stdout, the one format
//! scripts/bench.sh reads.

/// Metrics of one scenario run, in the order measured.
#[derive(Default)]
pub struct Report {
    rows: Vec<(String, f64, String)>,
}

impl Report {
    /// Adds one metric.
    pub fn add(&mut self, name: &str, value: f64, unit: &str) {
        eprintln!("  {name} = {value:.3} {unit}");
        self.rows.push((name.to_string(), value, unit.to_string()));
    }

    /// A metric's value, if measured.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.rows.iter().find(|r| r.0 == name).map(|r| r.1)
    }

    /// Prints every metric to stdout.
    pub fn print(&self) {
        for (n, v, u) in &self.rows {
            let v = if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{v:.0}")
            } else {
                format!("{v:.3}")
            };
            println!("{n}\t{v}\t{u}");
        }
    }
}
