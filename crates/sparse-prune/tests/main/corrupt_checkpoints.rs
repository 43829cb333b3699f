//! Corrupted checkpoints: a masked model file and a pruner state with bytes flipped, cut short
//! or inserted must load or fail with an error naming the file, never panic.

use crate::common::Mlp;
use burn::module::Module;
use burn::tensor::Device;
use sparse_prune::Selection;
use sparse_prune::{Amount, PruneSchedule, PrunerConfig, load_masked};

fn mutate(bytes: &[u8], state: &mut u64) -> Vec<u8> {
    let mut next = || {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    };
    let mut m = bytes.to_vec();
    for _ in 0..1 + next() % 3 {
        let at = (next() as usize) % m.len().max(1);
        match next() % 4 {
            0 if !m.is_empty() => m[at] ^= 1 << (next() % 8),
            1 if !m.is_empty() => m[at] = next() as u8,
            2 => m.insert(at.min(m.len()), next() as u8),
            _ => m.truncate(at),
        }
    }
    m
}

#[test]
fn corrupted_checkpoints_load_or_fail_by_name_never_panic() {
    let device = Device::flex();
    let dir = std::env::temp_dir().join(format!("sparse-prune-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut pruner = PrunerConfig::new(PruneSchedule::OneShot {
        at: 0,
        sparsity: 0.5,
    })
    .with_params(Selection::All)
    .init()
    .unwrap();
    let model = pruner.attach(Mlp::new(6, 8, 3, &device)).unwrap();
    let (model, _) = pruner
        .prune(model, 0, Amount::FractionOfAlive(0.5), None)
        .unwrap();
    let (good_model, good_state) = (dir.join("good.bpk"), dir.join("good.json"));
    model.save_file(&good_model).unwrap();
    pruner.save_state(&good_state).unwrap();
    let (model_bytes, state_bytes) = (
        std::fs::read(&good_model).unwrap(),
        std::fs::read(&good_state).unwrap(),
    );
    let (bad_model, bad_state) = (dir.join("bad.bpk"), dir.join("bad.json"));
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let (mut model_errors, mut state_errors) = (0, 0);
    for round in 0..300 {
        std::fs::write(&bad_model, mutate(&model_bytes, &mut seed)).unwrap();
        let loaded = std::panic::catch_unwind(|| {
            load_masked(Mlp::new(6, 8, 3, &device), &Selection::All, &bad_model)
        });
        match loaded {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                assert!(e.to_string().contains("bad.bpk"), "round {round}: {e}");
                model_errors += 1;
            }
            Err(_) => panic!("round {round}: loading a corrupted model file panicked"),
        }
        std::fs::write(&bad_state, mutate(&state_bytes, &mut seed)).unwrap();
        let mut p = PrunerConfig::new(PruneSchedule::OneShot {
            at: 0,
            sparsity: 0.5,
        })
        .with_params(Selection::All)
        .init()
        .unwrap();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.load_state(&bad_state))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                assert!(e.to_string().contains("bad.json"), "round {round}: {e}");
                state_errors += 1;
            }
            Err(_) => panic!("round {round}: loading a corrupted pruner state panicked"),
        }
    }
    // The mutations do break files (the test is not vacuous).
    assert!(model_errors > 50, "{model_errors} model errors");
    assert!(state_errors > 50, "{state_errors} state errors");
    std::fs::remove_dir_all(&dir).ok();
}
