//! From a (pruned) Burn module to a `.sparse` file and back.

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};

use crate::format::{SparseTensor, ValueType, decode, encode};
use crate::{ExportError, Inspection};

/// The float parameters of `model`, masks folded in, as sparse tensors (tied ones once).
pub fn sparse_tensors<M: Module>(model: &M) -> Vec<SparseTensor> {
    let plain = sparse_prune::fold(model.clone());
    let mut v = Collect {
        path: vec![],
        seen: vec![],
        out: vec![],
    };
    plain.visit(&mut v);
    v.out
}

struct Collect {
    path: Vec<String>,
    seen: Vec<ParamId>,
    out: Vec<SparseTensor>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.seen.contains(&param.id) {
            return;
        }
        self.seen.push(param.id);
        let t = param.val();
        let shape = t.dims().to_vec();
        let values = t
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("a float tensor converts to f32");
        self.out.push(SparseTensor::from_dense(
            self.path.join("."),
            shape,
            &values,
        ));
    }
}

/// Write `model` (masks folded in) to `path` with values as `vt`: through a temporary file and
/// a rename, so an interrupted write never leaves a half file. Returns what was written.
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::tensor::Device;
/// use sparse_export::{ValueType, export, import};
/// let device = Device::flex();
/// let layer = LinearConfig::new(8, 4).init(&device);
/// let file = std::env::temp_dir().join(format!("doc-{}.sparse", std::process::id()));
/// let info = export(&layer, &file, ValueType::F32).unwrap();
/// assert_eq!(info.rows.len(), 2); // weight and bias
/// let back = import(LinearConfig::new(8, 4).init(&device), &file).unwrap();
/// # std::fs::remove_file(&file).ok();
/// # let _ = back;
/// ```
pub fn export<M: Module>(
    model: &M,
    path: impl AsRef<Path>,
    vt: ValueType,
) -> Result<Inspection, ExportError> {
    let path = path.as_ref();
    let tensors = sparse_tensors(model);
    let bytes = encode(&tensors, vt);
    let tmp = path.with_extension("sparse.part");
    std::fs::write(&tmp, &bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| ExportError::new(path.display().to_string(), format!("cannot write: {e}")))?;
    Ok(Inspection::of(&tensors, vt, bytes.len()))
}

/// Read a `.sparse` file.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<SparseTensor>, ExportError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| ExportError::new(&name, format!("cannot read: {e}")))?;
    decode(&name, &bytes)
}

/// Load a `.sparse` file into `model` (same architecture, no masks needed): every float
/// parameter must be in the file with its shape, and every tensor of the file must be used.
/// With f32 values the result equals the exported model (masks folded) bit for bit.
pub fn import<M: Module>(model: M, path: impl AsRef<Path>) -> Result<M, ExportError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let tensors = read(path)?;
    let mut mapper = Apply {
        path: vec![],
        tensors: tensors.into_iter().map(|t| (t.path.clone(), t)).collect(),
        errors: vec![],
        used: vec![],
    };
    let model = model.map(&mut mapper);
    if let Some(e) = mapper.errors.first() {
        return Err(ExportError::new(format!("{name}: {}", e.0), e.1.clone()));
    }
    let mut unused: Vec<&String> = mapper
        .tensors
        .keys()
        .filter(|k| !mapper.used.contains(k))
        .collect();
    unused.sort();
    if let Some(k) = unused.first() {
        return Err(ExportError::new(
            format!("{name}: {k}"),
            "this tensor matches no parameter of the model (another architecture?)",
        ));
    }
    Ok(model)
}

struct Apply {
    path: Vec<String>,
    tensors: HashMap<String, SparseTensor>,
    errors: Vec<(String, String)>,
    used: Vec<String>,
}

impl ModuleMapper for Apply {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        let Some(t) = self.tensors.get(&path) else {
            self.errors.push((
                path,
                "the model has this parameter, the file does not".into(),
            ));
            return param;
        };
        let shape = param.lazy_shape().as_slice().to_vec();
        if t.shape != shape {
            self.errors.push((
                path,
                format!("shape {:?} in the file, {shape:?} in the model", t.shape),
            ));
            return param;
        }
        let dense = t.to_dense();
        self.used.push(path);
        param.map(|old| {
            let require_grad = old.is_require_grad();
            Tensor::from_data(TensorData::new(dense, shape), &old.device())
                .set_require_grad(require_grad)
        })
    }
}
