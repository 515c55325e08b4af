//! Per-row cost of the preview pipeline: read a CSV row, render every template, derive the
//! request_id, serialise the body and hash it. `cargo bench --bench pipeline` reports the
//! time for 10,000 rows; divide by 10,000 for ns per row.

use std::io::Write;
use std::path::Path;

use creem_batch::batch::{Batch, RowPlan};
use creem_batch::campaign::Campaign;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const ROWS: u64 = 10_000;

const YAML: &str = r#"campaign: bench
customers: customers.csv
checkout:
  product_id: prod_6tW66i0oZM7w1qXReHJrwg
  units: "{{ seats }}"
  discount_code: SPRING2026
  locale: "{{ locale }}"
  plan_type: team_annual
  success_url: https://yourdomain.com/success
  customer:
    email: "{{ email }}"
  metadata:
    userId: "{{ user_id }}"
    segment: "{{ segment }}"
    referrer: "{{ referrer }}"
    source: spring_campaign
"#;

fn write_inputs(dir: &Path) -> std::path::PathBuf {
    let mut csv =
        std::io::BufWriter::new(std::fs::File::create(dir.join("customers.csv")).unwrap());
    writeln!(
        csv,
        "email,first_name,seats,segment,referrer,locale,user_id"
    )
    .unwrap();
    for i in 0..ROWS {
        writeln!(
            csv,
            "user{i}@example.com,Name {i},{},smb,aff_{},en,u_{i}",
            i % 5 + 1,
            i % 17
        )
        .unwrap();
    }
    csv.flush().unwrap();
    let yaml = dir.join("bench.yaml");
    std::fs::write(&yaml, YAML).unwrap();
    yaml
}

fn pipeline(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = write_inputs(dir.path());
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(ROWS));
    group.sample_size(20);
    group.bench_function("10k rows: read, render, request_id, body, sha256", |b| {
        b.iter(|| {
            let campaign = Campaign::load(&yaml).unwrap();
            let mut batch = Batch::open(campaign).unwrap();
            let mut ready = 0u64;
            while let Some(plan) = batch.next_row().unwrap() {
                if let RowPlan::Ready { request, .. } = plan {
                    ready += request.body.len() as u64;
                }
            }
            ready
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
