//! Benchmark baseline: the plain MongoDB driver loop that only drains a collection's cursor
//! (what the export is compared against in `make bench`). Usage: mongo_drain URI DB COLLECTION.

use futures::TryStreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (uri, db, collection) = (&args[1], &args[2], &args[3]);
    let started = std::time::Instant::now();
    let client = mongodb::Client::with_uri_str(uri).await?;
    let coll = client.database(db).collection::<bson::Document>(collection);
    // Same batch size as the runner's export, so both make the same round trips.
    let mut cursor = coll.find(bson::doc! {}).batch_size(2000).await?;
    let mut n: u64 = 0;
    while let Some(doc) = cursor.try_next().await? {
        std::hint::black_box(&doc);
        n += 1;
    }
    println!("{n} documents in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}
