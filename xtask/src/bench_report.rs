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
        out.push_str(
            "### CPU backends: flex against ndarray (`cargo run --release -p xtask --features ndarray \
             -- bench backends`)\n\n",
        );
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
    let flex_ops = lines(dir, "flex_ops");
    if !flex_ops.is_empty() {
        out.push_str("### ResNet-20 on flex: the convolutions and BatchNorms (`cargo xtask bench flex-ops`)\n\n");
        out.push_str("Training step with the method, as shipped against Burn's ops for what this project replaced (same process, interleaved):\n\n");
        out.push_str("| model | batch | threads | shipped ms | Burn's `BatchNorm` ms | / shipped | Burn's `Conv2d` and `BatchNorm` ms | / shipped |\n|---|---|---|---|---|---|---|---|\n");
        for v in flex_ops.iter().filter(|v| v["bench"] == "flex-ops") {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} [{}] | {} | {} [{}] |\n",
                v["model"].as_str().unwrap_or("?"),
                v["batch"],
                v["threads"],
                f(v, "shipped_train_ms", 1),
                f(v, "burn_bn_train_ms", 1),
                f(v, "burn_bn_over_shipped", 2),
                min_max(v, "burn_bn_over_shipped_min_max"),
                f(v, "burn_ops_train_ms", 1),
                f(v, "burn_ops_over_shipped", 2),
                min_max(v, "burn_ops_over_shipped_min_max"),
            ));
        }
        out.push('\n');
    }
    out.push_str(&render_gpu(dir));
    out
}

/// The first line of the GPU backends' tables in [`render`]'s text: [`write_into`] puts what
/// follows it between markers of their own, so that a rerun of the CPU benchmarks alone (which
/// has no GPU rows) leaves the GPU section as it is.
const GPU_START: &str = "### GPU backends";

/// The GPU backends' tables: `bench overhead --backend wgpu|cuda` (`overhead_BACKEND.json`) and
/// `gpu-check` (`gpu_check.json`); empty when neither has run.
fn render_gpu(dir: &Path) -> String {
    let mut out = String::new();
    for backend in ["wgpu", "cuda"] {
        let rows = lines(dir, &format!("overhead_{backend}"));
        let overhead: Vec<&Value> = rows.iter().filter(|v| v["bench"] == "overhead").collect();
        if overhead.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "#### Overhead per training step on {backend} (`cargo run --release -p xtask \
             --features {backend} -- bench overhead --backend {backend}`)\n\n"
        ));
        if let Some(m) = rows.iter().find(|v| v["bench"] == "machine") {
            out.push_str(&format!(
                "Machine: {} through {}, {} CPUs, {} {}.\n\n",
                m["adapter"].as_str().unwrap_or("unknown adapter"),
                backend,
                m["cpus"],
                m["os"].as_str().unwrap_or("?"),
                m["arch"].as_str().unwrap_or("?"),
            ));
        }
        out.push_str(
            "| model | optimizer | batch | bare ms/step | decay / bare | decay+masks / bare | \
             in place / bare | in the step / bare [per repetition] | of the fastest \
             repetitions | kernels per step: bare | decay | decay+masks | in place | in the step \
             |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for v in &overhead {
            let k = |name: &str| f(v, &format!("{name}_launches_per_step"), 0);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                v["model"].as_str().unwrap_or("?"),
                v["optimizer"].as_str().unwrap_or("?"),
                v["batch"],
                f(v, "bare_ms_per_step", 2),
                f(v, "ratio_decay", 2),
                f(v, "ratio_decay_masks", 2),
                f(v, "ratio_decay_masks_in_place", 2),
                ratio(v, "ratio_decay_masks_in_step"),
                f(v, "ratio_decay_masks_in_step_of_minima", 2),
                k("bare"),
                k("decay"),
                k("decay+masks"),
                k("decay+masks_in_place"),
                k("decay+masks_in_step"),
            ));
        }
        let plan: Vec<String> = overhead
            .iter()
            .map(|v| {
                format!(
                    "{} {} x {}",
                    v["model"].as_str().unwrap_or("?"),
                    v["reps"],
                    v["steps_per_rep"]
                )
            })
            .fold(Vec::new(), |mut acc, p| {
                if !acc.contains(&p) {
                    acc.push(p);
                }
                acc
            });
        out.push_str(&format!(
            "\nRepetitions x steps of each contestant per repetition, in turn: {}. Kernels per \
             step: the launches CubeCL's launch observer counted (with Burn's fusion, one fused \
             kernel is one launch).\n\n",
            plan.join(", ")
        ));
    }
    let check = lines(dir, "gpu_check");
    if !check.is_empty() {
        out.push_str("#### `cargo xtask gpu-check` (docs/GPU.md)\n\n");
        out.push_str(&crate::gpu_check::tables(&check));
        out.push('\n');
    }
    if out.is_empty() {
        return out;
    }
    format!("{GPU_START}\n\n{out}")
}

/// The tables of a committed `gpu-check` record (`dir/gpu_check.json`), printed, and written into
/// `file` between the markers `cargo xtask bench-report --gpu-record DIR` when given.
pub fn gpu_record(dir: &Path, file: Option<&Path>) -> Result<(), String> {
    let json = dir.join("gpu_check.json");
    if !json.is_file() {
        return Err(format!(
            "{}: no such file (expected the gpu_check.json that `cargo xtask gpu-check` wrote)",
            json.display()
        ));
    }
    let check = lines(dir, "gpu_check");
    if !check.iter().any(|v| v["bench"] == "gpu_check_machine") {
        return Err(format!(
            "{}: no gpu_check_machine line (expected JSON lines written by `cargo xtask \
             gpu-check`)",
            json.display()
        ));
    }
    let text = format!(
        "Built by `cargo xtask bench-report --gpu-record {}` from the record there.\n\n{}\n",
        dir.display(),
        crate::gpu_check::tables(&check)
    );
    print!("{text}");
    if let Some(file) = file {
        let name = format!("cargo xtask bench-report --gpu-record {}", dir.display());
        crate::markers::write_between(file, &name, &text)?;
        eprintln!("wrote {}", file.display());
    }
    Ok(())
}

/// Replace the text between the bench-report markers of `file` with `tables` (and the GPU
/// backends' tables, when `tables` has them, between their own markers).
pub fn write_into(file: &Path, tables: &str) -> Result<(), String> {
    let (cpu, gpu) = match tables.find(GPU_START) {
        Some(i) => tables.split_at(i),
        None => (tables, ""),
    };
    // A report with no CPU results (only a GPU backend measured here) keeps the CPU tables.
    if !cpu.trim().is_empty() {
        crate::markers::write_between(file, "cargo xtask bench-report", cpu)?;
    }
    if gpu.is_empty() {
        return Ok(());
    }
    crate::markers::write_between(file, "cargo xtask bench-report: GPU backends", gpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bench-report-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn gpu_rows_go_between_their_own_markers_and_a_cpu_rerun_keeps_them() {
        let dir = temp_dir("gpu");
        std::fs::write(
            dir.join("overhead_wgpu.json"),
            "{\"bench\":\"machine\",\"adapter\":\"llvmpipe\",\"cpus\":2,\"os\":\"linux\",\
             \"arch\":\"x86_64\"}\n{\"bench\":\"overhead\",\"backend\":\"wgpu\",\"model\":\
             \"lenet5\",\"optimizer\":\"sgd-momentum\",\"batch\":32,\"reps\":9,\
             \"steps_per_rep\":3,\"bare_ms_per_step\":120.0,\"ratio_decay_masks_in_step\":1.04,\
             \"ratio_decay_masks_in_step_min_max\":[0.98,1.1],\"bare_launches_per_step\":80.0,\
             \"decay+masks_in_step_launches_per_step\":95.0}\n",
        )
        .unwrap();
        let tables = render(&dir);
        assert!(tables.contains("Machine: llvmpipe through wgpu, 2 CPUs"));
        assert!(tables.contains(
            "| lenet5 | sgd-momentum | 32 | 120.00 | - | - | - | 1.04 [0.98-1.10] | - | 80 | - \
             | - | - | 95 |"
        ));
        let doc = dir.join("doc.md");
        std::fs::write(
            &doc,
            "intro\n<!-- BEGIN cargo xtask bench-report -->\nthe CPU tables\n\
             <!-- END cargo xtask bench-report -->\n",
        )
        .unwrap();
        write_into(&doc, &tables).unwrap();
        let written = std::fs::read_to_string(&doc).unwrap();
        // Only a GPU backend measured: the CPU tables stay.
        assert!(written.contains("\nthe CPU tables\n"), "{written}");
        let gpu_begin = written
            .find("<!-- BEGIN cargo xtask bench-report: GPU backends -->")
            .expect("the GPU section");
        assert!(written[gpu_begin..].contains("| lenet5 | sgd-momentum | 32 |"));
        assert!(!written[..gpu_begin].contains("| lenet5 | sgd-momentum | 32 |"));
        // The CPU benchmarks alone (no GPU files): the GPU section stays as it was.
        std::fs::remove_file(dir.join("overhead_wgpu.json")).unwrap();
        write_into(&doc, &render(&dir)).unwrap();
        let rewritten = std::fs::read_to_string(&doc).unwrap();
        assert!(rewritten.contains("| lenet5 | sgd-momentum | 32 | 120.00 |"));
        assert_eq!(rewritten.matches("GPU backends -->").count(), 2);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_gpu_record_is_written_into_its_own_section_and_bad_records_are_refused() {
        let dir = temp_dir("record");
        let missing = gpu_record(&dir, None).unwrap_err();
        assert_eq!(
            missing,
            format!(
                "{}: no such file (expected the gpu_check.json that `cargo xtask gpu-check` \
                 wrote)",
                dir.join("gpu_check.json").display()
            )
        );
        std::fs::write(dir.join("gpu_check.json"), "{\"bench\":\"overhead\"}\n").unwrap();
        let foreign = gpu_record(&dir, None).unwrap_err();
        assert!(foreign.ends_with("gpu_check.json: no gpu_check_machine line (expected JSON lines written by `cargo xtask gpu-check`)"), "{foreign}");
        std::fs::write(
            dir.join("gpu_check.json"),
            "{\"bench\":\"gpu_check_machine\",\"adapter\":\"NVIDIA H200\",\"backend\":\
             \"wgpu\",\"cpus\":16,\"os\":\"linux\",\"arch\":\"x86_64\",\"quick\":false}\n",
        )
        .unwrap();
        let doc = dir.join("doc.md");
        std::fs::write(&doc, "intro\n").unwrap();
        gpu_record(&dir, Some(&doc)).unwrap();
        let written = std::fs::read_to_string(&doc).unwrap();
        let name = format!("cargo xtask bench-report --gpu-record {}", dir.display());
        assert!(written.contains(&format!("<!-- BEGIN {name} -->\nBuilt by `{name}`")));
        assert!(
            written.contains("Machine: NVIDIA H200 (wgpu), 16 CPUs, linux x86_64"),
            "{written}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
