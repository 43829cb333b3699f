//! Pruning masks as a Burn [`Reparameterization`]: saved, loaded and moved with the model.

use std::sync::{Arc, Mutex};

use burn::module::{Module, Param, ParamId, Reparameterization, Reparameterizer};
use burn::tensor::{Bool, Device, Tensor, TensorData};

use sparse_reg::{ParamInfo, Selection};

use crate::snapshot::snapshot;
use crate::{Masking, PruneError};

/// The mask of one parameter: its effective value is `base` with the pruned entries set to 0.
///
/// Stored flat as `Param<Tensor<1, Bool>>` (`true` = pruned) under the parameter's path, e.g.
/// `fc1.weight.prune_mask.pruned`, so `save_file`/`load_file` carry it. The optimizer sees the
/// base, whose gradient is 0 at pruned entries; the effective weight is exactly 0 there
/// whatever the base, its momentum or its decay do, so nothing can revive a pruned entry.
///
/// The forward pass multiplies the base by a float keep-mask (1 alive, 0 pruned) that is
/// computed once per mask content and device, not at every step: a mask's [`ParamId`] names
/// its content. sparse-prune gives a mask a new id whenever it writes it (attach, every prune
/// event), and a mask loaded from a file carries the id it was saved with. Code that replaces
/// `pruned` itself must give it a new id too (`Param::initialized(ParamId::new(), mask)`).
#[derive(Module, Debug)]
pub struct PruneMask {
    /// `true` where the entry is pruned, flattened in row-major order.
    pub pruned: Param<Tensor<1, Bool>>,
    /// The keep-mask of the current content (shared by clones; keyed, so never stale).
    #[module(skip)]
    keep: KeepCache,
    /// Where the mask acts: in the forward pass, or in the base after each step.
    #[module(skip)]
    masking: Masking,
}

impl PruneMask {
    /// A mask from its flat `pruned` parameter (`true` = pruned).
    ///
    /// ```
    /// use burn::module::{Param, ParamId};
    /// use burn::tensor::{Bool, Device, Tensor};
    /// use sparse_prune::PruneMask;
    ///
    /// let device = Device::flex();
    /// let pruned = Tensor::<1, Bool>::from_bool([true, false], &device);
    /// let mask = PruneMask::new(Param::initialized(ParamId::new(), pruned));
    /// assert_eq!(mask.pruned.val().dims(), [2]);
    /// ```
    pub fn new(pruned: Param<Tensor<1, Bool>>) -> Self {
        Self {
            pruned,
            keep: KeepCache::default(),
            masking: Masking::Forward,
        }
    }

    /// The same mask acting as `masking` says (see [`Masking`];
    /// [`Pruner::attach`](crate::Pruner::attach) sets it from the configuration).
    ///
    /// ```
    /// use burn::module::{Param, ParamId};
    /// use burn::tensor::{Bool, Device, Tensor};
    /// use sparse_prune::{Masking, PruneMask};
    ///
    /// let pruned = Tensor::<1, Bool>::from_bool([true, false], &Device::flex());
    /// let mask = PruneMask::new(Param::initialized(ParamId::new(), pruned));
    /// assert_eq!(mask.masking(), Masking::Forward);
    /// assert_eq!(mask.with_masking(Masking::InPlace).masking(), Masking::InPlace);
    /// ```
    pub fn with_masking(mut self, masking: Masking) -> Self {
        self.masking = masking;
        self
    }

    /// Where this mask acts.
    pub fn masking(&self) -> Masking {
        self.masking
    }
}

impl Reparameterization for PruneMask {
    const NAME: &'static str = "prune_mask";

    fn apply<const D: usize>(&self, base: Tensor<D>) -> Tensor<D> {
        if self.masking == Masking::InPlace {
            // The pruned entries of the base are 0 already (`Pruner::enforce`).
            return base;
        }
        // A multiply by the 0/1 keep-mask, not `mask_fill`: the backward pass of `mask_fill`
        // on flex is a branchy in-place loop that mispredicts on every other entry of a
        // random mask (it cost ~2 ms per LeNet-300-100 step); `mul` backward is branch-free.
        let shape = base.shape();
        let keep = self.keep.get(self.pruned.id, &base.device(), || {
            self.pruned.val().bool_not().float()
        });
        base * keep.reshape(shape)
    }
}

/// The float keep-mask of one (mask id, device), kept between steps: building it is two passes
/// over the parameter (`bool_not`, the bool-to-float conversion) that a pruned model would
/// otherwise pay at every forward pass.
#[derive(Clone, Default)]
struct KeepCache(Arc<Mutex<Option<(ParamId, Device, Tensor<1>)>>>);

impl KeepCache {
    fn get(&self, id: ParamId, device: &Device, build: impl FnOnce() -> Tensor<1>) -> Tensor<1> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached, on, keep)) = slot.as_ref()
            && *cached == id
            && on == device
        {
            return keep.clone();
        }
        let keep = build();
        *slot = Some((id, device.clone(), keep.clone()));
        keep
    }
}

impl std::fmt::Debug for KeepCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeepCache")
    }
}

struct Attach {
    params: Selection,
    masking: Masking,
    attached: Vec<ParamId>,
}

impl Reparameterizer for Attach {
    type Reparam = PruneMask;

    fn reparameterize<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<PruneMask>) {
        let info = ParamInfo {
            path: path.to_string(),
            id: param.id,
            shape: param.lazy_shape().as_slice().to_vec(),
        };
        if !self.params.matches(&info) {
            return (param, None);
        }
        if self.attached.contains(&param.id) {
            // A tied parameter met a second time: the first mask stands.
            return (param, None);
        }
        let device = param.lazy_device();
        let n: usize = info.numel();
        let pruned = Tensor::<1, Bool>::from_data(TensorData::new(vec![false; n], [n]), &device);
        self.attached.push(param.id);
        (
            param,
            Some(
                PruneMask::new(Param::initialized(ParamId::new(), pruned))
                    .with_masking(self.masking),
            ),
        )
    }
}

/// Attach an all-alive mask, acting as `masking` says, to every float parameter `params`
/// selects. Returns the model and the number of masks attached.
///
/// Errors if the selection matches no parameter, if the model already has masks, or if a
/// selected parameter already carries another reparameterization (such as LoRA).
pub(crate) fn attach_masks<M: Module>(
    model: M,
    params: &Selection,
    masking: Masking,
) -> Result<(M, usize), PruneError> {
    if count_masks(&model) > 0 {
        return Err(PruneError::Config(sparse_reg::ConfigError::new(
            "masks",
            "the model already has pruning masks; attach them once",
        )));
    }
    let selected = params
        .group(&model, "PrunerConfig.params")
        .map(|_| params.params(&model))?;
    let attach = Attach {
        params: params.clone(),
        masking,
        attached: vec![],
    };
    let model = model.apply_reparameterization(attach);
    let n = count_masks(&model);
    if n != selected.len() {
        return Err(PruneError::Config(sparse_reg::ConfigError::new(
            "PrunerConfig.params",
            "a selected parameter already carries another reparameterization (e.g. LoRA); \
             exclude it from the selection",
        )));
    }
    Ok((model, n))
}

/// Number of pruning masks in `model`.
pub fn count_masks<M: Module>(model: &M) -> usize {
    snapshot(model, false, None)
        .iter()
        .filter(|p| p.pruned.is_some())
        .count()
}

/// Bake the masks into plain weights (pruned entries become stored zeros) and drop them: the
/// model then has the original parameter structure, for export or dense inference.
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::tensor::Device;
/// use sparse_prune::{PruneSchedule, PrunerConfig, count_masks, fold};
///
/// let mut pruner = PrunerConfig::new(PruneSchedule::OneShot { at: 1, sparsity: 0.5 }).init().unwrap();
/// let layer = pruner.attach(LinearConfig::new(4, 3).init(&Device::flex())).unwrap();
/// assert_eq!(count_masks(&layer), 1); // the weight (rank 2), not the bias
/// assert_eq!(count_masks(&fold(layer)), 0);
/// ```
pub fn fold<M: Module>(model: M) -> M {
    model.materialize()
}

/// Load a pruned checkpoint written with `save_file`: masks are attached to the parameters
/// `params` selects (the selection the checkpoint was pruned with) and the file is loaded into
/// `model` with them.
///
/// The loaded masks act in the forward pass ([`Masking::Forward`]), whatever masking the run
/// that saved them used: a loaded model is safe in any loop, and nothing can revive a pruned
/// weight. [`Pruner::attach`](crate::Pruner::attach) (or `SparsityConfig::init`) takes a loaded
/// model over to continue pruning, with its own masking.
///
/// Errors, naming the file, when it cannot be read or its parameters (masks included) do not
/// match the model's.
///
/// ```
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::Device;
/// use sparse_prune::{Amount, PruneSchedule, PrunerConfig, Selection, SparsityReport, load_masked};
///
/// let device = Device::flex();
/// let mut pruner = PrunerConfig::new(PruneSchedule::OneShot { at: 1, sparsity: 0.5 }).init().unwrap();
/// let model: Linear = pruner.attach(LinearConfig::new(4, 4).init(&device)).unwrap();
/// let (model, _) = pruner.prune(model, 1, Amount::Sparsity(0.5), None).unwrap();
/// let file = std::env::temp_dir().join(format!("load-masked-doc-{}", std::process::id()));
/// model.save_file(&file).unwrap();
///
/// let fresh: Linear = LinearConfig::new(4, 4).init(&device);
/// let loaded = load_masked(fresh, &Selection::Weights, file.with_extension("bpk")).unwrap();
/// assert_eq!(SparsityReport::of(&loaded).nonzeros(), 8 + 4); // half the weight, the bias
/// # std::fs::remove_file(file.with_extension("bpk")).unwrap();
/// ```
pub fn load_masked<M: Module>(
    model: M,
    params: &Selection,
    path: impl AsRef<std::path::Path>,
) -> Result<M, PruneError> {
    let path = path.as_ref();
    let (model, _) = attach_masks(model, params, Masking::Forward)?;
    model.try_load_file(path).map_err(|e| PruneError::File {
        path: path.display().to_string(),
        message: format!(
            "cannot load it as a masked checkpoint of this model (is it a checkpoint of the same \
             architecture saved with its masks, pruned with the same parameter selection?): {e}"
        ),
    })
}
