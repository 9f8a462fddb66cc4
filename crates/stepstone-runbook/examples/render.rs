//! Render the runbooks of a plan file: `cargo run -p stepstone-runbook --example render -- plan.json fleet.json KIND`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let plan: stepstone_core::plan::Plan = serde_json::from_str(&std::fs::read_to_string(&args[1]).unwrap()).unwrap();
    let inv =
        stepstone_core::snapshot::load_str(&args[2], &std::fs::read_to_string(&args[2]).unwrap(), &Default::default())
            .unwrap();
    let t = stepstone_runbook::Templates::embedded();
    let o = stepstone_runbook::RunbookOptions::default();
    let out = match args[3].as_str() {
        "upgrade" => stepstone_runbook::upgrade_markdown(&plan, Some(&inv), &o, &t),
        "rollback" => stepstone_runbook::rollback_markdown(&plan, Some(&inv), &o, &t),
        "html" => stepstone_runbook::html_report(&plan, Some(&inv), &t),
        _ => stepstone_runbook::staging_markdown(
            &stepstone_runbook::staging_design(&inv, &"v1.35.3".parse().unwrap()),
            &t,
        ),
    };
    match out {
        Ok(s) => print!("{s}"),
        Err(e) => eprintln!("error: {e}"),
    }
}
