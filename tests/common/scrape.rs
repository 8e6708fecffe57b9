//! Reading a Prometheus metrics page.

/// A parsed metrics page.
pub struct Scrape(prometheus_parse::Scrape);

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        Scrape(prometheus_parse::Scrape::parse(lines).expect("metrics parse"))
    }

    /// The sum of the scalar samples of `metric` whose labels include
    /// `labels`; `None` when there is no such sample.
    pub fn sum(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for sample in &self.0.samples {
            if sample.metric != metric
                || !labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v))
            {
                continue;
            }
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => continue,
            };
            *found.get_or_insert(0.0) += value;
        }
        found
    }
}
