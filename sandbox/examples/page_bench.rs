//! Pages through one org's supporters and transactions, 100 per page, from a single client
//! and reports records/s. Usage: `page_bench BASE_URL CLIENT_ID SECRET ORG [sort]`
//! (`sort`: `id` pages by id, `updated_at` uses filter=updated_at>=... & sort=updated_at:asc).

use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (base, id, secret, org) = (&args[1], &args[2], &args[3], &args[4]);
    let mode = args.get(5).map(String::as_str).unwrap_or("id");
    let http = reqwest::Client::new();
    let tok: serde_json::Value = http
        .post(format!("{base}/oauth2/auth"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await?
        .json()
        .await?;
    let token = tok["access_token"].as_str().unwrap_or_default().to_string();
    for entity in ["supporters", "transactions"] {
        let started = Instant::now();
        let (mut records, mut requests, mut page) = (0usize, 0usize, 1usize);
        loop {
            let query = match mode {
                "updated_at" => format!(
                    "filter=updated_at%3E%3D2023-01-01T00%3A00%3A00%2B0000&sort=updated_at%3Aasc&per_page=100&page={page}"
                ),
                _ => format!("per_page=100&page={page}"),
            };
            let body: serde_json::Value = http
                .get(format!("{base}/2.0/organizations/{org}/{entity}?{query}"))
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            requests += 1;
            records += body["data"].as_array().map(Vec::len).unwrap_or(0);
            if body["next_page_url"].is_null() {
                break;
            }
            page += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{entity}: {records} records, {requests} requests in {secs:.1}s = {:.0} records/s ({:.2} ms/request)",
            records as f64 / secs,
            secs * 1000.0 / requests as f64
        );
    }
    Ok(())
}
