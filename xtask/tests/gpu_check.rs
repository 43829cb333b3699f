//! `cargo xtask gpu-check --quick` end to end, on the CPU (`--backend flex`), so that the command
//! a GPU machine is lent for is known to work in every build: the step rows, the two start-up
//! child processes, the ResNet-20 epoch by the `cifar10` example's binary (when the workspace
//! build has it), the PyTorch rows or their reason for being skipped, the JSON and the tables.
//! On lavapipe, with xtask built with `--features wgpu`, the same command is in docs/GPU.md.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[test]
fn gpu_check_quick_runs_end_to_end_on_the_cpu() {
    let out = std::env::temp_dir().join(format!("gpu-check-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let exe = Path::new(env!("CARGO_BIN_EXE_xtask"));
    let run = Command::new(exe)
        .args(["gpu-check", "--quick", "--backend", "flex", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "gpu-check failed: {stderr}");

    let text = std::fs::read_to_string(out.join("gpu_check.json")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of =
        |bench: &str| -> Vec<&Value> { lines.iter().filter(|l| l["bench"] == bench).collect() };
    assert_eq!(of("gpu_check_machine").len(), 1, "{text}");
    assert_eq!(of("gpu_check_machine")[0]["backend"], "flex");

    // LeNet-5 and ResNet-20, each with Burn's SGD and the one-pass SGD: both contestants timed.
    let steps = of("gpu_check_steps");
    let rows: Vec<(String, String)> = steps
        .iter()
        .map(|r| (r["model"].to_string(), r["optimizer"].to_string()))
        .collect();
    assert_eq!(
        rows,
        [
            ("\"lenet5\"", "\"sgd-momentum\""),
            ("\"lenet5\"", "\"fused-sgd-momentum\""),
            ("\"resnet20\"", "\"sgd-momentum\""),
            ("\"resnet20\"", "\"fused-sgd-momentum\""),
        ]
        .map(|(m, o)| (m.to_string(), o.to_string()))
    );
    for r in &steps {
        for key in ["bare_ms_per_step", "decay+masks_in_step_ms_per_step"] {
            let ms = r[key].as_f64().unwrap_or(f64::NAN);
            assert!(ms > 0.0 && ms.is_finite(), "{key} in {r}");
        }
    }

    // Start-up: a cold and a warm child process, each timing the first steps of both models.
    let startup = of("gpu_check_startup");
    assert_eq!(startup.len(), 1, "{text}");
    for run in ["cold", "warm"] {
        for model in ["lenet5", "resnet20"] {
            let steady = startup[0][run][model]["steady_ms"]
                .as_f64()
                .unwrap_or(f64::NAN);
            assert!(steady > 0.0, "{run} {model}: {}", startup[0]);
        }
    }

    // The CIFAR-10 epochs: run by the example's binary next to xtask (target/debug/examples,
    // with whichever backend it was last built), a dense and a pruning epoch; or skipped only
    // because the binary is not there.
    let cifar = of("gpu_check_cifar");
    assert_eq!(cifar.len(), 1, "{text}");
    let cifar = cifar[0];
    if exe.parent().unwrap().join("examples/cifar10").is_file() {
        assert!(cifar["skipped"].is_null(), "{cifar}");
        assert!(
            cifar["dense_epoch_done_at_s"].as_f64().unwrap() > 0.0,
            "{cifar}"
        );
        assert!(cifar["pruning_steps"].as_u64().unwrap() > 0, "{cifar}");
        assert!(cifar["final_test_acc"].as_f64().is_some(), "{cifar}");
    } else {
        let why = cifar["skipped"].as_str().unwrap();
        assert!(why.starts_with("no cifar10 binary"), "{why}");
    }

    // PyTorch: measured, or skipped with the reason.
    let torch = of("gpu_check_torch");
    assert!(!torch.is_empty(), "{text}");
    for t in torch {
        assert!(
            t["skipped"].is_string() || t["dense_ms"].as_f64().is_some(),
            "{t}"
        );
    }
    assert_eq!(of("gpu_check_total").len(), 1, "{text}");

    let tables = std::fs::read_to_string(out.join("gpu_check.md")).unwrap();
    assert!(
        tables.contains("lenet5") && tables.contains("resnet20"),
        "{tables}"
    );
    std::fs::remove_dir_all(&out).ok();
}
