//! The accelerator catalog: what each accelerator model is, so that cards from NVIDIA, Huawei
//! Ascend, Cambricon, Hygon and others can be compared in normalised compute (PFLOPS) and matched
//! against software stacks.
//!
//! The catalog is data (`catalog/accelerators.toml`, parsed by `suanwang-formats`); this module
//! only holds and indexes it.

use std::collections::BTreeMap;

use crate::error::ModelError;

/// The most accelerator models a catalog may hold (an [`AcceleratorSet`] is a 128-bit set).
pub const MAX_ACCELERATOR_MODELS: usize = 128;

/// Index of a model in its [`Catalog`]. Only meaningful with the catalog that issued it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AcceleratorId(pub(crate) u8);

impl AcceleratorId {
    /// The position of this model in its catalog.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// One accelerator model as published by its vendor.
#[derive(Clone, Debug, PartialEq)]
pub struct Accelerator {
    /// Canonical model name, e.g. `A800-SXM4-80GB`; unique in the catalog (case-insensitive).
    pub model: String,
    /// Other names the same model goes by in traces and cluster inventories (e.g. `V100M16`).
    pub aliases: Vec<String>,
    /// Vendor, e.g. `NVIDIA`, `Huawei`.
    pub vendor: String,
    /// Device memory; `None` when the vendor has not disclosed it.
    pub memory_gib: Option<u32>,
    /// Dense FP16 tensor throughput; `None` when the vendor has not disclosed it.
    pub fp16_dense_tflops: Option<f64>,
    /// Dense BF16 tensor throughput; `None` when not supported or not disclosed.
    pub bf16_dense_tflops: Option<f64>,
    /// Designed and made by a Chinese vendor (matters for voucher subsidy ratios).
    pub domestic: bool,
    /// The software stack programs must target, e.g. `CUDA`, `CANN`, `Neuware`, `DTK`.
    pub software_stack: String,
    /// Board power, for energy estimates; `None` when unknown.
    pub board_power_w: Option<u32>,
    /// Where the figures come from, or caveats.
    pub note: String,
}

/// An indexed, validated set of accelerator models.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    accelerators: Vec<Accelerator>,
    /// Lower-cased model names and aliases.
    by_name: BTreeMap<String, AcceleratorId>,
}

impl Catalog {
    /// Builds a catalog, checking that names and aliases are unique and figures are sane.
    pub fn new(accelerators: Vec<Accelerator>) -> Result<Self, ModelError> {
        if accelerators.len() > MAX_ACCELERATOR_MODELS {
            return Err(ModelError::TooMany {
                what: "accelerator models",
                got: accelerators.len(),
                limit: MAX_ACCELERATOR_MODELS,
            });
        }
        let mut by_name = BTreeMap::new();
        for (index, accelerator) in accelerators.iter().enumerate() {
            validate(accelerator)?;
            let id = AcceleratorId(u8::try_from(index).expect("bounded by MAX_ACCELERATOR_MODELS"));
            for name in std::iter::once(&accelerator.model).chain(&accelerator.aliases) {
                if by_name.insert(name.to_lowercase(), id).is_some() {
                    return Err(ModelError::Duplicate { kind: "accelerator", name: name.clone() });
                }
            }
        }
        Ok(Catalog { accelerators, by_name })
    }

    /// Finds a model by its name or an alias, ignoring case.
    pub fn lookup(&self, name: &str) -> Option<AcceleratorId> {
        self.by_name.get(&name.to_lowercase()).copied()
    }

    /// Like [`lookup`](Self::lookup), but an unknown name is an error that says how to fix it.
    pub fn resolve(&self, name: &str) -> Result<AcceleratorId, ModelError> {
        self.lookup(name).ok_or_else(|| ModelError::Unknown {
            kind: "accelerator model",
            name: name.to_owned(),
            hint: "; add it (or an alias) to the accelerator catalog".to_owned(),
        })
    }

    /// The model behind an id issued by this catalog.
    pub fn get(&self, id: AcceleratorId) -> &Accelerator {
        &self.accelerators[id.index()]
    }

    /// All models with their ids, in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = (AcceleratorId, &Accelerator)> {
        self.accelerators.iter().enumerate().map(|(i, a)| (AcceleratorId(i as u8), a))
    }

    /// Number of models.
    pub fn len(&self) -> usize {
        self.accelerators.len()
    }

    /// True when the catalog has no models.
    pub fn is_empty(&self) -> bool {
        self.accelerators.is_empty()
    }
}

fn validate(a: &Accelerator) -> Result<(), ModelError> {
    if a.model.trim().is_empty() {
        return Err(ModelError::out_of_range("accelerator model", "a non-empty name", "\"\""));
    }
    for (what, tflops) in [("fp16_dense_tflops", a.fp16_dense_tflops), ("bf16_dense_tflops", a.bf16_dense_tflops)] {
        if let Some(t) = tflops
            && !(t.is_finite() && t > 0.0 && t < 100_000.0)
        {
            return Err(ModelError::out_of_range(format!("{} {what}", a.model), "in (0, 100000)", t));
        }
    }
    if let Some(memory_gib) = a.memory_gib
        && !(1..=4096).contains(&memory_gib)
    {
        return Err(ModelError::out_of_range(format!("{} memory_gib", a.model), "in 1..=4096", memory_gib));
    }
    if a.software_stack.trim().is_empty() {
        return Err(ModelError::out_of_range(format!("{} software_stack", a.model), "a non-empty name", "\"\""));
    }
    Ok(())
}

/// A set of accelerator models, e.g. the models a task accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct AcceleratorSet(u128);

impl AcceleratorSet {
    /// The set of every model ("any accelerator will do").
    pub const ANY: AcceleratorSet = AcceleratorSet(u128::MAX);
    /// The empty set.
    pub const NONE: AcceleratorSet = AcceleratorSet(0);

    /// Adds a model.
    pub fn insert(&mut self, id: AcceleratorId) {
        self.0 |= 1u128 << id.0;
    }

    /// Whether the set holds a model.
    pub fn contains(self, id: AcceleratorId) -> bool {
        self.0 & (1u128 << id.0) != 0
    }

    /// Whether every model is in the set.
    pub fn is_any(self) -> bool {
        self == Self::ANY
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set as bits (bit i = the model with index i), for sorting and hashing.
    pub fn bits(self) -> u128 {
        self.0
    }

    /// The inverse of [`bits`](Self::bits).
    pub fn from_bits(bits: u128) -> Self {
        AcceleratorSet(bits)
    }

    /// Models in both sets.
    pub fn intersection(self, other: AcceleratorSet) -> AcceleratorSet {
        AcceleratorSet(self.0 & other.0)
    }
}

/// Which frameworks run on which software stacks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdaptationMatrix {
    /// Lower-cased framework name → software stacks it runs on.
    frameworks: BTreeMap<String, Vec<String>>,
}

impl AdaptationMatrix {
    /// Builds a matrix; framework names must be unique (case-insensitive) and list some stack.
    pub fn new(entries: Vec<(String, Vec<String>)>) -> Result<Self, ModelError> {
        let mut frameworks = BTreeMap::new();
        for (name, stacks) in entries {
            if stacks.is_empty() {
                return Err(ModelError::out_of_range(format!("framework {name} stacks"), "at least one stack", "none"));
            }
            if frameworks.insert(name.to_lowercase(), stacks).is_some() {
                return Err(ModelError::Duplicate { kind: "framework", name });
            }
        }
        Ok(AdaptationMatrix { frameworks })
    }

    /// The models of `catalog` a framework runs on, or an error naming the known frameworks.
    pub fn models(&self, framework: &str, catalog: &Catalog) -> Result<AcceleratorSet, ModelError> {
        let stacks = self.frameworks.get(&framework.to_lowercase()).ok_or_else(|| ModelError::Unknown {
            kind: "framework",
            name: framework.to_owned(),
            hint: format!("; known frameworks: {}", self.frameworks.keys().cloned().collect::<Vec<_>>().join(", ")),
        })?;
        Ok(catalog
            .iter()
            .filter(|(_, a)| stacks.iter().any(|s| s.eq_ignore_ascii_case(&a.software_stack)))
            .map(|(id, _)| id)
            .collect())
    }

    /// The models of `accepted` that `framework` runs on; an error when the framework is unknown
    /// or runs on none of them. Placement uses this for every job that names a framework.
    pub fn narrow(
        &self,
        framework: &str,
        accepted: AcceleratorSet,
        catalog: &Catalog,
    ) -> Result<AcceleratorSet, ModelError> {
        let narrowed = accepted.intersection(self.models(framework, catalog)?);
        if narrowed.is_empty() {
            return Err(ModelError::Inconsistent(format!(
                "no accepted accelerator model runs {framework} (it needs {})",
                self.frameworks.get(&framework.to_lowercase()).map(|s| s.join(" or ")).unwrap_or_default()
            )));
        }
        Ok(narrowed)
    }

    /// Frameworks and their stacks, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.frameworks.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

impl FromIterator<AcceleratorId> for AcceleratorSet {
    fn from_iter<I: IntoIterator<Item = AcceleratorId>>(iter: I) -> Self {
        let mut set = AcceleratorSet::NONE;
        for id in iter {
            set.insert(id);
        }
        set
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn accelerator(model: &str, tflops: Option<f64>, domestic: bool) -> Accelerator {
        Accelerator {
            model: model.to_owned(),
            aliases: vec![],
            vendor: "test".to_owned(),
            memory_gib: Some(80),
            fp16_dense_tflops: tflops,
            bf16_dense_tflops: tflops,
            domestic,
            software_stack: if domestic { "CANN" } else { "CUDA" }.to_owned(),
            board_power_w: Some(400),
            note: String::new(),
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_knows_aliases() {
        let mut v100 = accelerator("V100-SXM2-16GB", Some(125.0), false);
        v100.aliases.push("V100M16".to_owned());
        let catalog = Catalog::new(vec![accelerator("A800", Some(312.0), false), v100]).unwrap();
        assert_eq!(catalog.lookup("a800").map(AcceleratorId::index), Some(0));
        assert_eq!(catalog.lookup("v100m16").map(AcceleratorId::index), Some(1));
        assert_eq!(catalog.lookup("H100"), None);
        let err = catalog.resolve("H100").unwrap_err();
        assert_eq!(err.code(), "unknown_reference");
        assert!(err.to_string().contains("add it"), "{err}");
    }

    #[test]
    fn duplicate_names_and_aliases_are_rejected() {
        let mut b = accelerator("B", None, false);
        b.aliases.push("a".to_owned());
        let err = Catalog::new(vec![accelerator("A", None, false), b]).unwrap_err();
        assert_eq!(err, ModelError::Duplicate { kind: "accelerator", name: "a".to_owned() });
    }

    #[test]
    fn absurd_figures_are_rejected() {
        let err = Catalog::new(vec![accelerator("A", Some(-1.0), false)]).unwrap_err();
        assert_eq!(err.code(), "out_of_range");
        let err = Catalog::new(vec![accelerator("A", Some(f64::NAN), false)]).unwrap_err();
        assert_eq!(err.code(), "out_of_range");
    }

    #[test]
    fn the_adaptation_matrix_maps_frameworks_to_models() {
        let catalog = Catalog::new(vec![accelerator("A800", None, false), accelerator("910B", None, true)]).unwrap();
        let matrix = AdaptationMatrix::new(vec![
            ("PyTorch".to_owned(), vec!["CUDA".to_owned(), "CANN".to_owned()]),
            ("jax".to_owned(), vec!["CUDA".to_owned()]),
        ])
        .unwrap();
        let any = matrix.models("pytorch", &catalog).unwrap();
        assert!(any.contains(catalog.lookup("A800").unwrap()) && any.contains(catalog.lookup("910B").unwrap()));
        let jax = matrix.models("JAX", &catalog).unwrap();
        assert!(jax.contains(catalog.lookup("A800").unwrap()) && !jax.contains(catalog.lookup("910B").unwrap()));
        let err = matrix.models("caffe", &catalog).unwrap_err();
        assert!(err.to_string().contains("known frameworks: jax, pytorch"), "{err}");
        assert_eq!(any.intersection(jax), jax);
    }

    #[test]
    fn sets_hold_what_was_inserted() {
        let set: AcceleratorSet = [AcceleratorId(3), AcceleratorId(127)].into_iter().collect();
        assert!(set.contains(AcceleratorId(3)) && set.contains(AcceleratorId(127)));
        assert!(!set.contains(AcceleratorId(4)));
        assert!(AcceleratorSet::ANY.contains(AcceleratorId(99)));
        assert!(AcceleratorSet::NONE.is_empty());
    }
}
