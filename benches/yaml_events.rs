//! The anchor for loading a config: the parser serde-saphyr uses (granit-parser, the same
//! options nhacviec reads with) run over a YAML file, every event counted and dropped, nothing
//! built. Not a test: `scripts/bench` runs it beside `nhacviec check` on the same file:
//!
//! ```text
//! cargo bench --bench yaml_events -- FILE
//! ```

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: yaml_events FILE")?;
    let started = Instant::now();
    let text = std::fs::read_to_string(&path)?;
    let mut options = granit_parser::Options::default();
    options.set_emit_comments(false);
    let parser = granit_parser::Parser::new_from_str_with_options(&text, options);
    let mut events = 0u64;
    for item in parser {
        item.map_err(|e| format!("{path}: {e:?}"))?;
        events += 1;
    }
    println!(
        "{events} events in {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
