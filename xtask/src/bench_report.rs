//! `cargo xtask bench-report`: the markdown tables of docs/BENCHMARKS.md, from the JSON lines
//! the benchmarks wrote under `target/bench/`.

use std::path::Path;

use serde_json::Value;

/// A ratio with its per-repetition range `[min-max]` when recorded (`KEY_min_max`).
fn ratio(v: &Value, key: &str) -> String {
    match v[format!("{key}_min_max")].as_array() {
        Some(_) => format!(
            "{} [{}]",
            f(v, key, 2),
            min_max(v, &format!("{key}_min_max"))
        ),
        None => f(v, key, 2),
    }
}

fn lines(dir: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(format!("{name}.json")))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn f(v: &Value, key: &str, digits: usize) -> String {
    v[key]
        .as_f64()
        .map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// A `[min, max]` pair as `min-max`.
fn min_max(v: &Value, key: &str) -> String {
    v[key].as_array().map_or("-".into(), |a| {
        format!(
            "{:.2}-{:.2}",
            a[0].as_f64().unwrap_or(0.0),
            a[1].as_f64().unwrap_or(0.0)
        )
    })
}

/// The Burn-against-PyTorch table of `bench torch`'s rows.
fn torch_table(torch: &[Value]) -> String {
    let mut out = String::from(
        "| model | optimizer | threads | Burn dense ms | PyTorch dense ms | Burn / PyTorch dense \
         [per repetition] | Burn + method ms (masks in the step) | PyTorch fused + masks ms | \
         PyTorch authors + masks ms | Burn method / PyTorch fused [per repetition] | / authors \
         |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for v in torch {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            v["model"].as_str().unwrap_or("?"),
            v["optimizer"].as_str().unwrap_or("?"),
            v["threads"],
            f(v, "burn_dense_ms", 2),
            f(v, "torch_dense_ms", 2),
            ratio(v, "burn_over_torch_dense"),
            f(v, "burn_method_ms", 2),
            f(v, "torch_fused_ms", 2),
            f(v, "torch_authors_ms", 2),
            ratio(v, "burn_method_over_torch_fused"),
            f(v, "burn_method_over_torch_authors", 2),
        ));
    }
    out.push('\n');
    out
}

/// The tables, one per benchmark that has results.
pub fn render(dir: &Path) -> String {
    let mut out = String::new();
    let overhead = lines(dir, "overhead");
    if overhead.iter().any(|v| v["bench"] == "overhead") {
        out.push_str("### Overhead per training step (`cargo xtask bench overhead`)\n\n");
        out.push_str("| model | optimizer | bare ms/step | decay / bare: median [per repetition] | of the fastest repetitions | decay+masks / bare: median [per repetition] | of the fastest repetitions | decay+masks in place / bare: median [per repetition] | of the fastest repetitions | decay+masks in the step / bare: median [per repetition] | of the fastest repetitions |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        for v in overhead.iter().filter(|v| v["bench"] == "overhead") {
            let mm = |k: &str| min_max(v, k);
            out.push_str(&format!(
                "| {} | {} | {} | {} [{}] | {} | {} [{}] | {} | {} [{}] | {} | {} [{}] | {} |\n",
                v["model"].as_str().unwrap_or("?"),
                v["optimizer"].as_str().unwrap_or("?"),
                f(v, "bare_ms_per_step", 2),
                f(v, "ratio_decay", 2),
                mm("ratio_decay_min_max"),
                f(v, "ratio_decay_of_minima", 2),
                f(v, "ratio_decay_masks", 2),
                mm("ratio_decay_masks_min_max"),
                f(v, "ratio_decay_masks_of_minima", 2),
                f(v, "ratio_decay_masks_in_place", 2),
                mm("ratio_decay_masks_in_place_min_max"),
                f(v, "ratio_decay_masks_in_place_of_minima", 2),
                f(v, "ratio_decay_masks_in_step", 2),
                mm("ratio_decay_masks_in_step_min_max"),
                f(v, "ratio_decay_masks_in_step_of_minima", 2),
            ));
        }
        let mut plan: Vec<String> = vec![];
        for v in overhead.iter().filter(|v| v["bench"] == "overhead") {
            let p = format!(
                "{} {} x {}",
                v["model"].as_str().unwrap_or("?"),
                v["reps"],
                v["steps_per_rep"]
            );
            if !plan.contains(&p) {
                plan.push(p);
            }
        }
        out.push_str(&format!(
            "Repetitions x steps of each contestant per repetition, in turn: {}. ",
            plan.join(", ")
        ));
        out.push_str(
            "\"of the fastest repetitions\" divides each contestant's fastest repetition \
             by the bare optimizer's. \"decay+masks\": masks in the forward pass; \"in place\": \
             `Pruner::enforce` zeroes the pruned weights after the step; \"in the step\": the \
             optimizer from `Pruner::optimizer` zeroes them in its own pass and `enforce` skips \
             them (the examples' set-up).\n",
        );
        out.push('\n');
    }
    let torch = lines(dir, "vs_torch");
    if let Some(skip) = torch.iter().find_map(|v| v["skipped"].as_str()) {
        out.push_str(&format!("Burn against PyTorch: skipped ({skip}).\n\n"));
    } else if !torch.is_empty() {
        out.push_str("### Burn flex against PyTorch CPU (`cargo xtask bench torch`)\n\n");
        out.push_str(&torch_table(&torch));
    }
    // Runs with fewer threads (`RAYON_NUM_THREADS=N cargo xtask bench torch`), in thread order.
    let mut fewer: Vec<usize> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("vs_torch_")?
                .strip_suffix("threads.json")?
                .parse()
                .ok()
        })
        .collect();
    fewer.sort_unstable();
    for threads in fewer {
        let rows = lines(dir, &format!("vs_torch_{threads}threads"));
        if rows
            .iter()
            .any(|v| v["bench"] == "vs_torch" && v["skipped"].is_null())
        {
            out.push_str(&format!(
                "### The same on {threads} thread(s) (`RAYON_NUM_THREADS={threads} cargo xtask \
                 bench torch`)\n\n"
            ));
            out.push_str(&torch_table(&rows));
        }
    }
    let prune = lines(dir, "prune_event");
    if !prune.is_empty() {
        out.push_str("### One global prune event (`cargo xtask bench prune`)\n\n| parameters | median s | min s |\n|---|---|---|\n");
        for v in &prune {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                v["params"],
                f(v, "median_s", 3),
                f(v, "min_s", 3)
            ));
        }
        out.push('\n');
    }
    for v in lines(dir, "loader") {
        out.push_str(&format!(
            "### Loader (`cargo xtask bench loader`)\n\n{} batches of 100 per second ({} ms per batch); the \
             fastest training step it feeds (LeNet-300-100, Adam) takes {} ms: {}x the loader's time.\n\n",
            f(&v, "batches_per_s", 0),
            f(&v, "loader_ms_per_batch", 3),
            f(&v, "lenet300_adam_step_ms", 2),
            f(&v, "step_over_loader", 0),
        ));
    }
    let export = lines(dir, "export");
    if !export.is_empty() {
        out.push_str("### Compressed files and sparse inference (`cargo xtask bench export`)\n\n");
        out.push_str("| model | sparsity | burnpack bytes | .sparse f32 | .sparse f16 | burnpack / .sparse f32 | batch 1: Burn dense ms | sparse ms | speed-up | PyTorch dense ms | batch 100: Burn dense ms | sparse ms | speed-up | PyTorch dense ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for v in &export {
            out.push_str(&format!(
                "| {} | {:.0} % | {} | {} | {} | {}x | {} | {} | {}x | {} | {} | {} | {}x | {} |\n",
                v["model"].as_str().unwrap_or("?"),
                100.0 * v["sparsity"].as_f64().unwrap_or(0.0),
                v["burnpack_bytes"],
                v["sparse_f32_bytes"],
                v["sparse_f16_bytes"],
                f(v, "burnpack_over_sparse_f32", 1),
                f(v, "burn_dense_ms_b1", 3),
                f(v, "sparse_ms_b1", 3),
                f(v, "speedup_vs_burn_b1", 1),
                f(v, "torch_dense_ms_b1", 3),
                f(v, "burn_dense_ms_b100", 2),
                f(v, "sparse_ms_b100", 2),
                f(v, "speedup_vs_burn_b100", 1),
                f(v, "torch_dense_ms_b100", 2),
            ));
        }
        out.push('\n');
    }
    let backends = lines(dir, "backends");
    if !backends.is_empty() {
        out.push_str("### CPU backends: flex against ndarray (`cargo xtask bench backends`)\n\n");
        out.push_str("| model | threads | flex train ms | ndarray train ms | ndarray / flex train | flex forward ms | ndarray forward ms | ndarray / flex forward |\n|---|---|---|---|---|---|---|---|\n");
        for v in backends.iter().filter(|v| v["bench"] == "backends") {
            let mm = |k: &str| min_max(v, k);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} [{}] | {} | {} | {} [{}] |\n",
                v["model"].as_str().unwrap_or("?"),
                v["threads"],
                f(v, "flex_train_ms", 2),
                f(v, "ndarray_train_ms", 2),
                f(v, "ndarray_over_flex_train", 2),
                mm("ndarray_over_flex_train_min_max"),
                f(v, "flex_forward_ms", 2),
                f(v, "ndarray_forward_ms", 2),
                f(v, "ndarray_over_flex_forward", 2),
                mm("ndarray_over_flex_forward_min_max"),
            ));
        }
        out.push('\n');
    }
    let variants: Vec<&Value> = backends
        .iter()
        .filter(|v| v["bench"] == "flex-variants")
        .collect();
    if !variants.is_empty() {
        out.push_str("LeNet-5 on flex, as shipped against Burn's own ops for what this project replaced (training step with the method, same process, interleaved):\n\n");
        out.push_str("| model | threads | shipped ms | Burn's max-pool + relu ms | / shipped | Burn's pool and `Conv2d` convolutions ms | / shipped |\n|---|---|---|---|---|---|---|\n");
        for v in variants {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} [{}] | {} | {} [{}] |\n",
                v["model"].as_str().unwrap_or("?"),
                v["threads"],
                f(v, "shipped_train_ms", 2),
                f(v, "burn_pool_train_ms", 2),
                f(v, "burn_pool_over_shipped", 2),
                min_max(v, "burn_pool_over_shipped_min_max"),
                f(v, "burn_ops_train_ms", 2),
                f(v, "burn_ops_over_shipped", 2),
                min_max(v, "burn_ops_over_shipped_min_max"),
            ));
        }
        out.push('\n');
    }
    out
}

/// Replace the text between the bench-report markers of `file` with `tables`.
pub fn write_into(file: &Path, tables: &str) -> Result<(), String> {
    crate::markers::write_between(file, "cargo xtask bench-report", tables)
}
