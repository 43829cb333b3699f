//! Shared helpers of the integration tests: a small MLP and a generated classification task.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig, loss::CrossEntropyLossConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// A two-layer perceptron.
#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Mlp {
    pub fn new(inputs: usize, hidden: usize, classes: usize, device: &Device) -> Self {
        Self {
            fc1: LinearConfig::new(inputs, hidden).init(device),
            fc2: LinearConfig::new(hidden, classes).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc2
            .forward(burn::tensor::activation::relu(self.fc1.forward(x)))
    }

    pub fn loss(&self, x: Tensor<2>, y: Tensor<1, Int>) -> Tensor<1> {
        CrossEntropyLossConfig::new()
            .init(&x.device())
            .forward(self.forward(x), y)
    }
}

/// A seeded task: 3 classes decided by a linear teacher on the first 4 of `inputs` features.
pub struct Task {
    pub x: Vec<f32>,
    pub y: Vec<i64>,
    pub inputs: usize,
}

fn lcg(state: &mut u64) -> f32 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

impl Task {
    pub fn new(n: usize, inputs: usize, seed: u64) -> Self {
        let mut s = seed;
        let teacher = [
            [1.0f32, -1.0, 0.5, 0.0],
            [-0.5, 1.0, 1.0, -1.0],
            [0.0, 0.2, -1.0, 1.0],
        ];
        let mut x = Vec::with_capacity(n * inputs);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row: Vec<f32> = (0..inputs).map(|_| lcg(&mut s)).collect();
            let logits: Vec<f32> = teacher
                .iter()
                .map(|t| t.iter().zip(&row).map(|(a, b)| a * b).sum())
                .collect();
            let label = (0..3)
                .max_by(|a, b| logits[*a].total_cmp(&logits[*b]))
                .unwrap();
            x.extend(row);
            y.push(label as i64);
        }
        Self { x, y, inputs }
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn batch(&self, start: usize, size: usize, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
        let end = (start + size).min(self.len());
        let x = TensorData::new(
            self.x[start * self.inputs..end * self.inputs].to_vec(),
            [end - start, self.inputs],
        );
        let y = TensorData::new(self.y[start..end].to_vec(), [end - start]);
        (Tensor::from_data(x, device), Tensor::from_data(y, device))
    }

    pub fn accuracy(&self, model: &Mlp, device: &Device) -> f64 {
        let (x, y) = self.batch(0, self.len(), device);
        let pred = model.forward(x).argmax(1).flatten::<1>(0, 1);
        let correct: i64 = pred.equal(y).int().sum().into_scalar();
        correct as f64 / self.len() as f64
    }
}

/// Effective weights of every parameter, flattened.
pub fn weights(model: &Mlp) -> Vec<Vec<f32>> {
    [
        model.fc1.weight.val().flatten::<1>(0, 1),
        model.fc1.bias.as_ref().unwrap().val(),
        model.fc2.weight.val().flatten::<1>(0, 1),
        model.fc2.bias.as_ref().unwrap().val(),
    ]
    .into_iter()
    .map(|t| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap())
    .collect()
}
