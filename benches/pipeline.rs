//! Per-row cost of the preview pipeline: read a CSV row, render every template, derive the
//! request_id, serialise the body and hash it; and of a re-run's decision over a finished
//! ledger (index the ledger, read the CSV, find each row unchanged). `cargo bench --bench
//! pipeline` reports the time for 10,000 rows; divide by 10,000 for ns per row.

use std::io::Write;
use std::path::Path;

use creem_batch::batch::{Batch, RowPlan};
use creem_batch::campaign::Campaign;
use creem_batch::ledger::{Prior, COLUMNS};
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
    write_finished_ledger(&yaml, &dir.path().join("bench.results.csv"));
    group.bench_function("10k rows: re-run over the finished ledger", |b| {
        b.iter(|| {
            let campaign = Campaign::load(&yaml).unwrap();
            let prior = Prior::open(&campaign.output).unwrap().unwrap();
            let mut batch = Batch::open(campaign).unwrap();
            batch.skip_unchanged(prior.unchanged_rows().expect("input hashes"));
            let mut unchanged = 0u64;
            while let Some(plan) = batch.next_row().unwrap() {
                unchanged += u64::from(matches!(plan, RowPlan::Unchanged { .. }));
            }
            assert_eq!(unchanged, ROWS);
            unchanged
        })
    });
    group.finish();
}

/// The ledger a run that created every row would leave (no API needed: ids are made up).
fn write_finished_ledger(yaml: &Path, path: &Path) {
    let campaign = Campaign::load(yaml).unwrap();
    let mut batch = Batch::open(campaign).unwrap();
    let mut out = csv::WriterBuilder::new().from_path(path).unwrap();
    out.write_record(COLUMNS).unwrap();
    while let Some(plan) = batch.next_row().unwrap() {
        let RowPlan::Ready { row, request } = plan else {
            panic!("every bench row is valid")
        };
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|column| match *column {
                "request_id" => request.request_id.clone(),
                "row" => row.to_string(),
                "email" => request.email.clone(),
                "status" => "created".to_owned(),
                "checkout_id" => format!("ch_{row}"),
                "http_status" => "200".to_owned(),
                "attempts" => "1".to_owned(),
                "body_sha256" => request.body_sha256.clone(),
                "campaign" => "bench".to_owned(),
                "input_hash" => format!("{:016x}", request.input_hash),
                "body" => String::from_utf8(request.body.clone()).unwrap(),
                _ => String::new(),
            })
            .collect();
        out.write_record(&cells).unwrap();
    }
    out.flush().unwrap();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
