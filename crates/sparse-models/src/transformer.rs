//! A decoder-only Transformer language model (GPT-style): token + learned position embedding,
//! pre-LayerNorm blocks of causal multi-head self-attention and a 4x GELU feed-forward, a
//! final LayerNorm, and an output projection tied to the token embedding.

use burn::config::Config;
use burn::module::Module;
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Gelu, Initializer, LayerNorm,
    LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::{Bool, Device, Int, Tensor};

/// Configuration of a [`TransformerLm`].
///
/// ```
/// use sparse_models::TransformerLmConfig;
/// let config = TransformerLmConfig::new(65).with_heads(3);
/// assert_eq!(
///     config.validate().unwrap_err(),
///     "TransformerLmConfig.d_model: expected a multiple of heads (3), got 128"
/// );
/// ```
#[derive(Config, Debug)]
pub struct TransformerLmConfig {
    /// Size of the token vocabulary.
    pub vocab: usize,
    /// Width of the residual stream.
    #[config(default = 128)]
    pub d_model: usize,
    /// Number of Transformer blocks.
    #[config(default = 4)]
    pub layers: usize,
    /// Attention heads per block (`d_model` must be a multiple).
    #[config(default = 4)]
    pub heads: usize,
    /// Longest input sequence (rows of the position embedding).
    #[config(default = 128)]
    pub context: usize,
    /// Dropout probability (attention weights, residual branches, embeddings).
    #[config(default = 0.0)]
    pub dropout: f64,
}

impl TransformerLmConfig {
    /// Check the fields; the error names the field and what is accepted.
    pub fn validate(&self) -> Result<(), String> {
        let at_least_one = |field: &str, v: usize| {
            if v == 0 {
                Err(format!(
                    "TransformerLmConfig.{field}: expected at least 1, got 0"
                ))
            } else {
                Ok(())
            }
        };
        at_least_one("vocab", self.vocab)?;
        at_least_one("d_model", self.d_model)?;
        at_least_one("layers", self.layers)?;
        at_least_one("heads", self.heads)?;
        at_least_one("context", self.context)?;
        if !self.d_model.is_multiple_of(self.heads) {
            return Err(format!(
                "TransformerLmConfig.d_model: expected a multiple of heads ({}), got {}",
                self.heads, self.d_model
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!(
                "TransformerLmConfig.dropout: expected a probability in [0, 1), got {}",
                self.dropout
            ));
        }
        Ok(())
    }

    /// A freshly initialised model on `device` (GPT-2's initialisation: embeddings from
    /// N(0, 0.02)).
    ///
    /// ```
    /// use burn::module::Module;
    /// use burn::tensor::{Device, Int, Tensor};
    /// use sparse_models::TransformerLmConfig;
    /// let device = Device::flex();
    /// let model = TransformerLmConfig::new(70).with_layers(1).init(&device).unwrap();
    /// // 70 x 128 tied embedding, 128 x 128 positions, one block, the final LayerNorm.
    /// assert_eq!(model.num_params(), 70 * 128 + 128 * 128 + 198_272 + 256);
    /// let logits = model.forward(Tensor::<2, Int>::zeros([2, 16], &device));
    /// assert_eq!(logits.dims(), [2, 16, 70]);
    /// ```
    pub fn init(&self, device: &Device) -> Result<TransformerLm, String> {
        self.validate()?;
        let d = self.d_model;
        let small = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        let blocks = (0..self.layers)
            .map(|_| Block {
                ln1: LayerNormConfig::new(d).init(device),
                attn: MultiHeadAttentionConfig::new(d, self.heads)
                    .with_dropout(self.dropout)
                    .init(device),
                ln2: LayerNormConfig::new(d).init(device),
                ff_in: LinearConfig::new(d, 4 * d).init(device),
                ff_out: LinearConfig::new(4 * d, d).init(device),
                gelu: Gelu::new(),
                dropout: DropoutConfig::new(self.dropout).init(),
            })
            .collect();
        Ok(TransformerLm {
            tok_emb: EmbeddingConfig::new(self.vocab, d)
                .with_initializer(small.clone())
                .init(device),
            pos_emb: EmbeddingConfig::new(self.context, d)
                .with_initializer(small)
                .init(device),
            blocks,
            ln_f: LayerNormConfig::new(d).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            context: self.context,
        })
    }
}

/// One pre-LayerNorm block: `x + attn(ln1(x))`, then `x + ff(ln2(x))`.
#[derive(Module, Debug)]
pub struct Block {
    /// LayerNorm before the attention.
    pub ln1: LayerNorm,
    /// Causal multi-head self-attention (query, key, value and output projections).
    pub attn: MultiHeadAttention,
    /// LayerNorm before the feed-forward.
    pub ln2: LayerNorm,
    /// Feed-forward, `d_model -> 4 d_model`.
    pub ff_in: Linear,
    /// Feed-forward, `4 d_model -> d_model`.
    pub ff_out: Linear,
    gelu: Gelu,
    dropout: Dropout,
}

impl Block {
    fn forward(&self, x: Tensor<3>, mask: Tensor<3, Bool>) -> Tensor<3> {
        let h = self.ln1.forward(x.clone());
        let attn = self
            .attn
            .forward(MhaInput::self_attn(h).mask_attn(mask))
            .context;
        let x = x + self.dropout.forward(attn);
        let h = self.ln2.forward(x.clone());
        let ff = self
            .ff_out
            .forward(self.gelu.forward(self.ff_in.forward(h)));
        x + self.dropout.forward(ff)
    }
}

/// A decoder-only Transformer language model; the output projection is the token embedding
/// (`logits = h E^T`), one parameter counted once.
///
/// ```
/// use burn::tensor::{Device, Int, Tensor, TensorData};
/// use sparse_models::TransformerLmConfig;
/// let device = Device::flex();
/// let model = TransformerLmConfig::new(10)
///     .with_d_model(16)
///     .with_heads(2)
///     .with_layers(2)
///     .with_context(8)
///     .init(&device)
///     .unwrap();
/// let tokens = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 3, 4], [1, 4]), &device);
/// assert_eq!(model.forward(tokens).dims(), [1, 4, 10]);
/// assert_eq!(model.context(), 8);
/// ```
#[derive(Module, Debug)]
pub struct TransformerLm {
    /// Token embedding `[vocab, d_model]`, also the output projection.
    pub tok_emb: Embedding,
    /// Learned position embedding `[context, d_model]`.
    pub pos_emb: Embedding,
    /// The Transformer blocks.
    pub blocks: Vec<Block>,
    /// The final LayerNorm.
    pub ln_f: LayerNorm,
    dropout: Dropout,
    context: usize,
}

impl TransformerLm {
    /// The longest sequence [`forward`](Self::forward) accepts.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Next-token logits `[batch, seq, vocab]` for tokens `[batch, seq]`, `seq <= context`:
    /// position `t` sees the tokens `0..=t` only.
    ///
    /// # Panics
    ///
    /// If `seq` exceeds the context.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [batch, seq] = tokens.dims();
        assert!(
            seq <= self.context,
            "TransformerLm: a sequence of {seq} tokens exceeds the context of {}",
            self.context
        );
        let device = tokens.device();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device).reshape([1, seq]);
        let x = self.tok_emb.forward(tokens) + self.pos_emb.forward(positions);
        let mut x = self.dropout.forward(x);
        let mask = burn::nn::attention::generate_autoregressive_mask(batch, seq, &device);
        for block in &self.blocks {
            x = block.forward(x, mask.clone());
        }
        let h = self.ln_f.forward(x);
        let [_, _, d] = h.dims();
        let emb = self.tok_emb.weight.val(); // [vocab, d_model]
        let [vocab, _] = emb.dims();
        h.reshape([batch * seq, d])
            .matmul(emb.transpose())
            .reshape([batch, seq, vocab])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn small(device: &Device) -> TransformerLm {
        TransformerLmConfig::new(12)
            .with_d_model(16)
            .with_heads(4)
            .with_layers(2)
            .with_context(10)
            .init(device)
            .unwrap()
    }

    fn tokens(values: &[i64], device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(TensorData::new(values.to_vec(), [1, values.len()]), device)
    }

    #[test]
    fn changing_a_later_token_never_changes_an_earlier_position() {
        let device = Device::flex();
        let model = small(&device);
        let a = model.forward(tokens(&[1, 5, 2, 7, 3, 3, 9, 0], &device));
        let b = model.forward(tokens(&[1, 5, 2, 7, 3, 11, 4, 6], &device));
        let (a, b) = (
            a.into_data().try_to_vec::<f32>().unwrap(),
            b.into_data().try_to_vec::<f32>().unwrap(),
        );
        // Positions 0..=4 see the same prefix: identical logits.
        let prefix = 5 * 12;
        for (x, y) in a[..prefix].iter().zip(&b[..prefix]) {
            assert!((x - y).abs() < 1e-5, "{x} != {y}");
        }
        // Position 5 sees the changed token.
        let diff: f32 = a[prefix..prefix + 12]
            .iter()
            .zip(&b[prefix..prefix + 12])
            .map(|(x, y)| (x - y).abs())
            .sum();
        assert!(
            diff > 1e-4,
            "the changed token did not change its own position"
        );
    }

    #[test]
    fn the_tied_embedding_is_counted_once() {
        let device = Device::flex();
        let model = TransformerLmConfig::new(65).init(&device).unwrap();
        let (v, d, c, l) = (65, 128, 128, 4);
        let block = 2 * 2 * d + 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d);
        assert_eq!(block, 198_272);
        assert_eq!(model.num_params(), v * d + c * d + l * block + 2 * d);
        assert_eq!(model.num_params(), 818_048);
    }

    #[test]
    fn config_errors_name_the_field() {
        let config = TransformerLmConfig::new(65).with_d_model(100).with_heads(3);
        assert_eq!(
            config.validate().unwrap_err(),
            "TransformerLmConfig.d_model: expected a multiple of heads (3), got 100"
        );
        assert_eq!(
            TransformerLmConfig::new(0)
                .init(&Device::flex())
                .unwrap_err(),
            "TransformerLmConfig.vocab: expected at least 1, got 0"
        );
        assert_eq!(
            TransformerLmConfig::new(65)
                .with_dropout(1.0)
                .validate()
                .unwrap_err(),
            "TransformerLmConfig.dropout: expected a probability in [0, 1), got 1"
        );
    }

    #[test]
    #[should_panic(expected = "exceeds the context of 10")]
    fn a_sequence_longer_than_the_context_is_refused() {
        let device = Device::flex();
        small(&device).forward(tokens(&[0; 11], &device));
    }
}
