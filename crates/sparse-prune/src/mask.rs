//! Pruning masks as a Burn [`Reparameterization`]: saved, loaded and moved with the model.

use std::sync::{Arc, Mutex};

use burn::module::{Module, Param, ParamGroup, ParamId, Reparameterization, Reparameterizer};
use burn::tensor::{Bool, Device, Tensor, TensorData};

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
    group: Option<ParamGroup>,
    from_zeros: bool,
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
        if !self
            .group
            .as_ref()
            .is_none_or(|g| g.matches(&param.id, Some(path)))
        {
            return (param, None);
        }
        if self.attached.contains(&param.id) {
            // A tied parameter met a second time: the first mask stands.
            return (param, None);
        }
        let device = param.lazy_device();
        let n: usize = param.lazy_shape().num_elements();
        let pruned: Vec<bool> = if self.from_zeros {
            crate::snapshot::host_f32(param.val())
                .iter()
                .map(|w| *w == 0.0)
                .collect()
        } else {
            vec![false; n]
        };
        let pruned = Tensor::<1, Bool>::from_data(TensorData::new(pruned, [n]), &device);
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

/// Where the masks start when they are attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MaskInit {
    /// Every entry alive (a dense start).
    #[default]
    AllAlive,
    /// Entries that are exactly 0 start pruned (continue from a folded, pruned checkpoint).
    FromZeros,
}

/// Attach a mask to every float parameter `group` selects (`None`: every float parameter,
/// the paper's default). Returns the model and the number of masks attached.
///
/// Errors if the selection matches no parameter, if the model already has masks, or if a
/// selected parameter already carries another reparameterization (such as LoRA).
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::tensor::Device;
/// use sparse_prune::{MaskInit, attach_masks};
///
/// let layer = LinearConfig::new(4, 3).init(&Device::flex());
/// let (layer, n) = attach_masks(layer, None, MaskInit::AllAlive).unwrap();
/// assert_eq!(n, 2); // weight and bias
/// # let _ = layer;
/// ```
pub fn attach_masks<M: Module>(
    model: M,
    group: Option<&ParamGroup>,
    init: MaskInit,
) -> Result<(M, usize), PruneError> {
    attach_masks_as(model, group, init, Masking::Forward)
}

/// [`attach_masks`] with masks acting as `masking` says.
pub(crate) fn attach_masks_as<M: Module>(
    model: M,
    group: Option<&ParamGroup>,
    init: MaskInit,
    masking: Masking,
) -> Result<(M, usize), PruneError> {
    if count_masks(&model) > 0 {
        return Err(PruneError::Config(sparse_reg::ConfigError::new(
            "masks",
            "the model already has pruning masks; attach them once",
        )));
    }
    let selected = sparse_reg::select_params(&model, group);
    if selected.is_empty() {
        let all: Vec<String> = sparse_reg::float_params(&model)
            .into_iter()
            .map(|p| p.path)
            .collect();
        return Err(PruneError::Config(sparse_reg::ConfigError::new(
            "PrunerConfig.params",
            format!(
                "the selection matches no float parameter of the model (its parameters: {})",
                all.join(", ")
            ),
        )));
    }
    let attach = Attach {
        group: group.cloned(),
        from_zeros: init == MaskInit::FromZeros,
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
/// use burn::module::Module;
/// use burn::nn::LinearConfig;
/// use burn::tensor::Device;
/// use sparse_prune::{MaskInit, attach_masks, count_masks, fold};
///
/// let (layer, _) = attach_masks(LinearConfig::new(4, 3).init(&Device::flex()), None, MaskInit::AllAlive).unwrap();
/// let plain = fold(layer);
/// assert_eq!(count_masks(&plain), 0);
/// ```
pub fn fold<M: Module>(model: M) -> M {
    model.materialize()
}

/// Attach masks to `model` (as [`attach_masks`]) and load a masked checkpoint saved with
/// `save_file` into it: the one call to resume from a pruned checkpoint.
///
/// Errors, naming the file, when it cannot be read or its parameters (masks included) do not
/// match the model's.
pub fn load_masked<M: Module>(
    model: M,
    group: Option<&ParamGroup>,
    path: impl AsRef<std::path::Path>,
) -> Result<M, PruneError> {
    load_masked_as(model, group, path.as_ref(), Masking::Forward)
}

/// [`load_masked`] with masks acting as `masking` says.
pub(crate) fn load_masked_as<M: Module>(
    model: M,
    group: Option<&ParamGroup>,
    path: &std::path::Path,
    masking: Masking,
) -> Result<M, PruneError> {
    let (model, _) = attach_masks_as(model, group, MaskInit::AllAlive, masking)?;
    model.try_load_file(path).map_err(|e| PruneError::File {
        path: path.display().to_string(),
        message: format!(
            "cannot load it as a masked checkpoint of this model (is it a checkpoint of the same \
             architecture saved with its masks?): {e}"
        ),
    })
}
