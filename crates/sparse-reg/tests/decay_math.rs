//! The selective decay's arithmetic, checked element by element against the formulas.
#![allow(clippy::needless_range_loop)] // element-by-element checks read best with indices

use burn::module::{Module, ParamGroup};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{
    AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, Optimizer, RmsPropConfig, SgdConfig,
    momentum::MomentumConfig,
};
use burn::tensor::{Device, Tensor, TensorData};
use sparse_reg::{Coupling, GammaSchedule, Penalty, Relevance, Selection, SelectiveDecayConfig};

fn t(values: &[f32]) -> Tensor<1> {
    Tensor::from_data(TensorData::from(values), &Device::flex())
}

fn v(t: Tensor<1>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

const W: [f32; 6] = [1.0, -2.0, 0.5, 3.0, -0.25, 0.0];
const G: [f32; 6] = [0.0, 0.1, -1.0, 2.0, 0.03, -0.4];

fn sgd_step(config: SelectiveDecayConfig, lr: f64) -> Vec<f32> {
    let decay = config.build(SgdConfig::new().build()).unwrap();
    let (w, _) = decay.step(lr, t(&W), t(&G), None);
    v(w)
}

#[test]
fn one_sgd_step_is_w_minus_lr_times_g_plus_2_gamma_f_g_w() {
    let (lr, gamma) = (0.1, 0.05);
    for relevance in [
        Relevance::Exp { alpha: 0.5 },
        Relevance::Exp { alpha: 1.0 },
        Relevance::Hyperbolic { alpha: 0.2 },
        Relevance::Lobster,
        Relevance::Constant,
    ] {
        let got = sgd_step(
            SelectiveDecayConfig::new()
                .with_gamma(gamma)
                .with_relevance(relevance),
            lr,
        );
        for i in 0..W.len() {
            let (w, g) = (W[i] as f64, G[i] as f64);
            let want = w - lr * (g + 2.0 * gamma * relevance.factor(g) * w);
            assert!(
                (got[i] as f64 - want).abs() < 1e-6,
                "{relevance:?} entry {i}: got {} want {want}",
                got[i]
            );
        }
    }
}

#[test]
fn l1_and_decoupled_variants_follow_their_formulas() {
    let (lr, gamma) = (0.1, 0.05);
    let rel = Relevance::Exp { alpha: 1.0 };
    let l1 = sgd_step(
        SelectiveDecayConfig::new()
            .with_gamma(gamma)
            .with_penalty(Penalty::L1),
        lr,
    );
    let lobster = sgd_step(
        SelectiveDecayConfig::new()
            .with_gamma(gamma)
            .with_relevance(Relevance::Lobster)
            .with_coupling(Coupling::Decoupled),
        lr,
    );
    for i in 0..W.len() {
        let (w, g) = (W[i] as f64, G[i] as f64);
        let sign = if w > 0.0 {
            1.0
        } else if w < 0.0 {
            -1.0
        } else {
            0.0
        };
        let want_l1 = w - lr * (g + gamma * rel.factor(g) * sign);
        assert!((l1[i] as f64 - want_l1).abs() < 1e-6, "L1 entry {i}");
        let want_lobster = w - lr * g - gamma * w * (1.0 - g.abs()).max(0.0);
        assert!(
            (lobster[i] as f64 - want_lobster).abs() < 1e-6,
            "LOBSTER entry {i}"
        );
    }
}

#[test]
fn autodiff_gradient_of_the_regularizer_with_g_held_constant_matches() {
    // R = gamma * f(g) * w^2 with f(g) a constant: dR/dw = 2 gamma f(g) w.
    let (gamma, relevance) = (0.05, Relevance::Exp { alpha: 0.5 });
    let device = Device::flex().autodiff();
    let w = Tensor::<1>::from_data(TensorData::from(W), &device).require_grad();
    let f = Tensor::<1>::from_data(
        TensorData::from(G.map(|g| relevance.factor(g as f64) as f32)),
        &device,
    );
    let r = (w.clone().powi_scalar(2) * f).sum().mul_scalar(gamma);
    let autodiff = v(w.grad(&r.backward()).unwrap());
    // With lr = 1 and plain SGD, w - step(w, g) is exactly the total gradient g + dR/dw.
    let stepped = sgd_step(
        SelectiveDecayConfig::new()
            .with_gamma(gamma)
            .with_relevance(relevance),
        1.0,
    );
    for i in 0..W.len() {
        let total = W[i] - stepped[i];
        assert!((total - G[i] - autodiff[i]).abs() < 1e-6, "entry {i}");
    }
}

#[test]
fn irrelevant_entries_shrink_and_relevant_ones_get_a_plain_update() {
    let (lr, gamma) = (0.1, 0.5);
    let w = [1.0f32; 8];
    let g = [0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 1.0, -1.0];
    let decay = SelectiveDecayConfig::new()
        .with_gamma(gamma)
        .with_relevance(Relevance::Exp { alpha: 0.01 })
        .build(SgdConfig::new().build())
        .unwrap();
    let (out, _) = decay.step(lr, t(&w), t(&g), None);
    let out = v(out);
    for i in 0..4 {
        // Full decay: w (1 - 2 lr gamma) = 0.9.
        assert!(
            (out[i] - 0.9).abs() < 1e-6,
            "irrelevant entry {i} = {}",
            out[i]
        );
    }
    for i in 4..8 {
        let plain = w[i] - lr as f32 * g[i];
        assert!(
            (out[i] - plain).abs() < 1e-9,
            "relevant entry {i}: {} vs {plain}",
            out[i]
        );
    }
}

#[derive(Module, Debug)]
struct Mlp {
    a: Linear,
    b: Linear,
}

fn mlp(device: &Device) -> Mlp {
    Mlp {
        a: LinearConfig::new(6, 5).init(device),
        b: LinearConfig::new(5, 2).init(device),
    }
}

fn grads(model: &Mlp, seed: u64, device: &Device) -> GradientsParams {
    // Deterministic inputs without the global RNG (tests run in parallel).
    let mut s = seed.wrapping_add(1);
    let values: Vec<f32> = (0..24)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let x = Tensor::<2>::from_data(TensorData::new(values, [4, 6]), device);
    let y = model.b.forward(model.a.forward(x).tanh());
    GradientsParams::from_grads(y.powi_scalar(2).mean().backward(), model)
}

fn train(mut model: Mlp, mut optim: ModuleOptimizer, device: &Device) -> Vec<f32> {
    for step in 0..20 {
        let g = grads(&model, step, device);
        model = optim.step(0.05, model, g);
    }
    let mut out = v(model.a.weight.val().flatten::<1>(0, 1));
    out.extend(v(model.b.weight.val().flatten::<1>(0, 1)));
    out
}

#[test]
fn gamma_zero_is_bit_for_bit_the_inner_optimizer() {
    let device = Device::flex().autodiff();
    let model = mlp(&device);
    let sgd = SgdConfig::new().with_momentum(Some(MomentumConfig::new().with_dampening(0.0)));
    let zero = SelectiveDecayConfig::new().with_gamma(0.0);
    assert_eq!(
        train(model.clone(), sgd.init(), &device),
        train(
            model.clone(),
            zero.init(sgd.build(), &model).unwrap(),
            &device
        )
    );
    let adam = AdamConfig::new();
    assert_eq!(
        train(model.clone(), adam.init(), &device),
        train(
            model.clone(),
            zero.init(adam.build(), &model).unwrap(),
            &device
        )
    );
    // ... and a non-zero gamma changes the result (the comparison can fail).
    let some = SelectiveDecayConfig::new().with_gamma(1e-2);
    assert_ne!(
        train(model.clone(), adam.init(), &device),
        train(
            model.clone(),
            some.init(adam.build(), &model).unwrap(),
            &device
        )
    );
}

/// The decay wraps Burn's optimizers, and changes what each of them does: the same training
/// with gamma = 0 (bit for bit the bare optimizer) ends elsewhere.
#[test]
fn wraps_any_optimizer() {
    let device = Device::flex().autodiff();
    let model = mlp(&device);
    let config = SelectiveDecayConfig::new().with_gamma(1e-2);
    let zero = SelectiveDecayConfig::new().with_gamma(0.0);
    let run = |c: &SelectiveDecayConfig, which: usize| {
        let optim = match which {
            0 => c.init(SgdConfig::new(), &model),
            1 => c.init(AdamConfig::new(), &model),
            2 => c.init(AdamWConfig::new(), &model),
            _ => c.init(RmsPropConfig::new(), &model),
        };
        train(model.clone(), optim.unwrap(), &device)
    };
    let bare = [
        train(model.clone(), SgdConfig::new().init(), &device),
        train(model.clone(), AdamConfig::new().init(), &device),
        train(model.clone(), AdamWConfig::new().init(), &device),
        train(model.clone(), RmsPropConfig::new().init(), &device),
    ];
    for (which, name) in ["SGD", "Adam", "AdamW", "RMSProp"].iter().enumerate() {
        let (decayed, undecayed) = (run(&config, which), run(&zero, which));
        assert!(decayed.iter().all(|x| x.is_finite()), "{name}");
        assert_eq!(
            undecayed, bare[which],
            "{name}: gamma = 0 is the bare optimizer"
        );
        assert_ne!(decayed, bare[which], "{name}: the decay changes the result");
    }
}

#[test]
fn a_linear_gamma_schedule_without_a_pruner_is_refused() {
    let model = mlp(&Device::flex().autodiff());
    let err = SelectiveDecayConfig::new()
        .with_schedule(GammaSchedule::Linear { steps: 10 })
        .init(SgdConfig::new(), &model)
        .err()
        .unwrap();
    assert_eq!(
        format!("{err:?}"),
        "invalid SelectiveDecayConfig.schedule: GammaSchedule::Linear fades gamma after each \
         prune event and needs the pruner to drive its clock: use \
         sparse_prune::SparsityConfig::init, or GammaSchedule::Constant"
    );
}

#[test]
fn selection_limits_the_decay_and_an_empty_selection_is_an_error() {
    let device = Device::flex().autodiff();
    let model = mlp(&device);
    let only_b = SelectiveDecayConfig::new()
        .with_gamma(0.5)
        .with_relevance(Relevance::Constant)
        .with_params(Selection::Group(ParamGroup::from_regex(r"^b\.").unwrap()));
    let mut optim = only_b.init(SgdConfig::new().build(), &model).unwrap();
    let mut plain = SgdConfig::new().init();
    let g1 = grads(&model, 1, &device);
    let g2 = grads(&model, 1, &device);
    let decayed = optim.step(0.1, model.clone(), g1);
    let bare = plain.step(0.1, model.clone(), g2);
    assert_eq!(
        v(decayed.a.weight.val().flatten::<1>(0, 1)),
        v(bare.a.weight.val().flatten::<1>(0, 1))
    );
    assert_ne!(
        v(decayed.b.weight.val().flatten::<1>(0, 1)),
        v(bare.b.weight.val().flatten::<1>(0, 1))
    );

    let none = SelectiveDecayConfig::new()
        .with_params(Selection::Group(ParamGroup::from_regex("^conv").unwrap()));
    let err = none.init(SgdConfig::new().build(), &model).err().unwrap();
    assert_eq!(
        err.to_string(),
        "invalid SelectiveDecayConfig.params: the selection matches no float parameter of the \
         model (its parameters: a.weight, a.bias, b.weight, b.bias)"
    );
}

#[test]
fn linear_schedule_follows_the_clock_inside_a_module_optimizer() {
    let decay = SelectiveDecayConfig::new()
        .with_gamma(0.5)
        .with_relevance(Relevance::Constant)
        .with_schedule(GammaSchedule::Linear { steps: 4 })
        .build(SgdConfig::new().build())
        .unwrap();
    let clock = decay.clock();
    let w = [1.0f32];
    let g = [0.0f32];
    let mut seen = vec![];
    for step in [0u64, 2, 4, 6] {
        clock.set_step(step);
        let (out, _) = decay.step(1.0, t(&w), t(&g), None);
        seen.push(v(out)[0]);
    }
    // gamma = 0.5, 0.25, 0, 0 -> w - 2 gamma w
    assert_eq!(seen, vec![0.0, 0.5, 1.0, 1.0]);
    clock.reset(6);
    let (out, _) = decay.step(1.0, t(&w), t(&g), None);
    assert_eq!(v(out)[0], 0.0, "a reset restores the full gamma");
}
