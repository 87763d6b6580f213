//! The layers of a model file, as a stack or as a graph:
//!
//! ```toml
//! [model]
//! inputs = [{ name = "pixels", shape = [784] }]
//! outputs = ["probs"]
//!
//! [[layers]]
//! name = "h1"
//! type = "dense"
//! units = 128
//! inputs = ["pixels"]     # without `inputs`, a layer reads the previous layer's output
//!
//! [[layers]]
//! name = "sum"
//! type = "add"            # add | concatenate | multiply | dot
//! inputs = ["h1", "h2"]
//!
//! [[layers]]
//! name = "tower_b"
//! shares = "tower_a"      # calls layer tower_a again, with its weights
//! inputs = ["b"]
//! ```
//!
//! A layer may also say `trainable = false` (frozen: `fit` leaves its weights alone).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{
    Graph, GraphLayer, KindCounts, Model, Sequential, SummaryRow, SummaryTable, SymbolicTensor,
};
use crate::nn::{DenseConfig, LayerConfig, Merge};

/// `[model]`: the inputs (one shape for a stack, or named inputs) and, for a graph, the
/// layers whose outputs the model returns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Shape of one sample, without the batch axis (a model of one input).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_shape: Vec<usize>,
    /// Named inputs of a graph.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputEntry>,
    /// The outputs of a graph, by layer name (default: the last layer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
}

/// A named input and the shape of one sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputEntry {
    pub name: String,
    pub shape: Vec<usize>,
}

/// What a `[[layers]]` entry computes.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerKind {
    Layer(LayerConfig),
    Merge(Merge),
    /// Another call of an earlier layer, sharing its weights.
    Shares(String),
}

/// One `[[layers]]` entry: the layer, its name, what it reads and whether it trains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "toml::Table", into = "toml::Table")]
pub struct LayerEntry {
    pub name: Option<String>,
    pub kind: LayerKind,
    /// The values it reads, by input or layer name; None: the previous layer's output.
    pub inputs: Option<Vec<String>>,
    pub trainable: bool,
}

impl From<LayerConfig> for LayerEntry {
    fn from(config: LayerConfig) -> Self {
        LayerEntry {
            name: None,
            kind: LayerKind::Layer(config),
            inputs: None,
            trainable: true,
        }
    }
}

impl LayerEntry {
    /// The layer's configuration, unless it is a merge or a shared call.
    pub fn config(&self) -> Option<&LayerConfig> {
        match &self.kind {
            LayerKind::Layer(config) => Some(config),
            _ => None,
        }
    }

    /// Whether the entry needs the graph form (it names inputs, merges or shares).
    fn is_graph(&self) -> bool {
        self.inputs.is_some() || !matches!(self.kind, LayerKind::Layer(_))
    }
}

impl TryFrom<toml::Table> for LayerEntry {
    type Error = String;

    fn try_from(mut table: toml::Table) -> Result<Self, String> {
        let text = |v: toml::Value, key: &str| -> Result<String, String> {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("`{key}` must be a string"))
        };
        let name = table.remove("name").map(|v| text(v, "name")).transpose()?;
        let inputs = table
            .remove("inputs")
            .map(|v| -> Result<Vec<String>, String> {
                let list = v.as_array().ok_or("`inputs` must be a list of names")?;
                list.iter().map(|v| text(v.clone(), "inputs")).collect()
            })
            .transpose()?;
        let trainable = table.remove("trainable");
        let shares = table.remove("shares");
        if shares.is_some() && trainable.is_some() {
            return Err(
                "a `shares` call trains as its layer does: set `trainable` on that layer".into(),
            );
        }
        let trainable = match trainable {
            Some(v) => v.as_bool().ok_or("`trainable` must be true or false")?,
            None => true,
        };
        let kind = if let Some(shared) = shares {
            if !table.is_empty() {
                let keys: Vec<&String> = table.keys().collect();
                return Err(format!(
                    "a `shares` entry takes only name, inputs and trainable, not {keys:?}"
                ));
            }
            LayerKind::Shares(text(shared, "shares")?)
        } else {
            let kind = table.get("type").and_then(|t| t.as_str()).unwrap_or("");
            let value = toml::Value::Table(table.clone());
            if Merge::TYPES.contains(&kind) {
                LayerKind::Merge(Merge::deserialize(value).map_err(|e| e.message().to_string())?)
            } else {
                LayerKind::Layer(
                    LayerConfig::deserialize(value).map_err(|e| e.message().to_string())?,
                )
            }
        };
        Ok(LayerEntry {
            name,
            kind,
            inputs,
            trainable,
        })
    }
}

impl From<LayerEntry> for toml::Table {
    fn from(entry: LayerEntry) -> toml::Table {
        let mut table = toml::Table::new();
        if let Some(name) = entry.name {
            table.insert("name".into(), name.into());
        }
        let body = match entry.kind {
            LayerKind::Layer(config) => toml::Table::try_from(config).ok(),
            LayerKind::Merge(merge) => toml::Table::try_from(merge).ok(),
            LayerKind::Shares(shared) => {
                table.insert("shares".into(), shared.into());
                None
            }
        };
        table.extend(body.unwrap_or_default());
        if let Some(inputs) = entry.inputs {
            let list = inputs.into_iter().map(toml::Value::from).collect();
            table.insert("inputs".into(), toml::Value::Array(list));
        }
        if !entry.trainable {
            table.insert("trainable".into(), false.into());
        }
        table
    }
}

/// The model a file's `[model]` and `[[layers]]` describe.
pub(crate) enum Plan<'a> {
    /// A straight stack on one input: built as a `Sequential`.
    Stack(&'a [usize]),
    /// Named inputs, and layers that read them and each other.
    Graph,
}

/// Which form the file takes; an error (field, message) when it mixes them.
pub(crate) fn plan<'a>(
    model: &'a ModelSection,
    layers: &[LayerEntry],
) -> Result<Plan<'a>, (String, String)> {
    match (model.input_shape.is_empty(), model.inputs.is_empty()) {
        (false, false) => Err((
            "model".into(),
            "give either input_shape (a stack) or inputs (a graph), not both".into(),
        )),
        (true, true) => Err((
            "model".into(),
            "needs input_shape (a stack) or inputs (a graph)".into(),
        )),
        (false, true) if layers.iter().any(LayerEntry::is_graph) || !model.outputs.is_empty() => {
            Err((
                "model.inputs".into(),
                "a model whose layers name their inputs, merge or share declares named inputs \
                 (inputs = [{ name = ..., shape = [...] }]) and outputs"
                    .into(),
            ))
        }
        (false, true) => Ok(Plan::Stack(&model.input_shape)),
        (true, false) => Ok(Plan::Graph),
    }
}

/// Builds the (uncompiled) model, seeded with `seed`. Errors name the field at fault.
pub(crate) fn build(
    model: &ModelSection,
    layers: &[LayerEntry],
    seed: u64,
) -> Result<Model, (String, String)> {
    if layers.is_empty() {
        return Err(("layers".into(), "the model needs at least one layer".into()));
    }
    match plan(model, layers)? {
        Plan::Stack(shape) => {
            let mut stack = Sequential::with_seed(shape, seed);
            for (i, entry) in layers.iter().enumerate() {
                let config = entry.config().expect("a stack has plain layers");
                stack
                    .add_boxed(config.to_layer())
                    .map_err(|e| (format!("layers[{i}]"), e.detail()))?;
                if !entry.trainable {
                    let name = stack.layers().last().map(|(n, _)| n.to_string());
                    if let Some(name) = name {
                        stack
                            .set_trainable(&name, false)
                            .map_err(|e| (format!("layers[{i}]"), e.detail()))?;
                    }
                }
            }
            Ok(stack.into_model())
        }
        Plan::Graph => build_graph(model, layers, seed),
    }
}

/// What the walk over a graph's entries does with them: check shapes, or build layers.
trait Visit {
    /// A value of the graph: a shape, or a symbolic tensor.
    type Value: Clone;
    fn input(&mut self, name: &str, shape: &[usize]) -> Result<Self::Value>;
    /// A new layer, named `name` (Keras's default name when None), called on `x`; returns
    /// the layer's name and output.
    /// `mask` is a padding mask, for layers that take one as a second input.
    fn layer(
        &mut self,
        name: Option<&str>,
        config: &LayerConfig,
        x: &Self::Value,
        mask: Option<&Self::Value>,
    ) -> Result<(String, Self::Value)>;
    fn merge(
        &mut self,
        name: Option<&str>,
        merge: Merge,
        xs: &[&Self::Value],
    ) -> Result<(String, Self::Value)>;
    /// Calls the layer `target` again; None when there is no such layer.
    fn share(
        &mut self,
        target: &str,
        x: &Self::Value,
        mask: Option<&Self::Value>,
    ) -> Option<Result<Self::Value>>;
}

/// A graph's inputs and outputs, and the name each entry was given.
struct Walked<T> {
    inputs: Vec<T>,
    outputs: Vec<T>,
    names: Vec<String>,
}

/// Walks a graph's inputs and entries in order, resolving the names each entry reads.
fn walk<V: Visit>(
    model: &ModelSection,
    layers: &[LayerEntry],
    visit: &mut V,
) -> Result<Walked<V::Value>, (String, String)> {
    let mut values: HashMap<String, V::Value> = HashMap::new();
    let mut inputs = Vec::new();
    for (i, input) in model.inputs.iter().enumerate() {
        let field = format!("model.inputs[{i}]");
        if values.contains_key(&input.name) {
            return Err((field, format!("the name '{}' is used twice", input.name)));
        }
        let t = visit
            .input(&input.name, &input.shape)
            .map_err(|e| (field, e.detail()))?;
        values.insert(input.name.clone(), t.clone());
        inputs.push(t);
    }
    let mut previous = inputs.last().cloned();
    let mut names = Vec::with_capacity(layers.len());
    for (i, entry) in layers.iter().enumerate() {
        let field = format!("layers[{i}]");
        let fail = |e: Error| (field.clone(), e.detail());
        let read: Vec<V::Value> = match &entry.inputs {
            Some(names) => names
                .iter()
                .map(|n| {
                    values.get(n).cloned().ok_or_else(|| {
                        (
                            format!("{field}.inputs"),
                            format!("no input or earlier layer is named '{n}'"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            None if model.inputs.len() > 1 && i == 0 => {
                return Err((
                    format!("{field}.inputs"),
                    "the first layer of a model with several inputs names the ones it reads".into(),
                ))
            }
            None => previous.iter().cloned().collect(),
        };
        let refs: Vec<&V::Value> = read.iter().collect();
        // A layer reads one input, and a padding mask if it takes one.
        type Read<'a, T> = (&'a T, Option<&'a T>);
        let one = || -> Result<Read<V::Value>, (String, String)> {
            match refs.as_slice() {
                [x] => Ok((*x, None)),
                [x, mask] => Ok((*x, Some(*mask))),
                _ => Err((
                    format!("{field}.inputs"),
                    format!(
                        "this layer reads one input (and a padding mask if it takes one), got {}",
                        refs.len()
                    ),
                )),
            }
        };
        let name = entry.name.as_deref();
        let (name, out) = match &entry.kind {
            LayerKind::Layer(config) => {
                let (x, mask) = one()?;
                visit.layer(name, config, x, mask).map_err(fail)?
            }
            LayerKind::Merge(merge) => visit.merge(name, *merge, &refs).map_err(fail)?,
            LayerKind::Shares(target) => {
                let name = name.ok_or_else(|| {
                    (
                        format!("{field}.name"),
                        "a `shares` entry names its output".to_string(),
                    )
                })?;
                let (x, mask) = one()?;
                let out = visit.share(target, x, mask).ok_or_else(|| {
                    (
                        format!("{field}.shares"),
                        format!("no earlier layer is named '{target}'"),
                    )
                })?;
                (name.to_string(), out.map_err(fail)?)
            }
        };
        if values.contains_key(&name) {
            return Err((
                format!("{field}.name"),
                format!("the name '{name}' is used twice"),
            ));
        }
        values.insert(name.clone(), out.clone());
        previous = Some(out);
        names.push(name);
    }
    let output_names = if model.outputs.is_empty() {
        names.last().cloned().into_iter().collect()
    } else {
        model.outputs.clone()
    };
    let outputs = output_names
        .iter()
        .map(|n| {
            values
                .get(n)
                .cloned()
                .ok_or_else(|| ("model.outputs".into(), format!("no layer is named '{n}'")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Walked {
        inputs,
        outputs,
        names,
    })
}

/// Checks every entry's shapes without creating any weight (a hostile file may ask for
/// layers too large to allocate).
struct ShapeCheck {
    /// Each layer's input and output shape, for shared calls.
    layers: HashMap<String, (&'static str, Vec<usize>, Vec<usize>)>,
    /// Layers of each kind so far, for the default names `Graph` will give.
    kinds: HashMap<&'static str, usize>,
    /// Weights the layers declare, or None once the count overflows.
    params: Option<usize>,
}

impl ShapeCheck {
    fn new() -> Self {
        ShapeCheck {
            layers: HashMap::new(),
            kinds: HashMap::new(),
            params: Some(0),
        }
    }

    /// `name`, or the default name of the next layer of `kind`, as `Graph` gives it.
    fn name(&mut self, name: Option<&str>, kind: &'static str) -> String {
        let seen = self.kinds.entry(kind).or_insert(0);
        *seen += 1;
        match (name, *seen - 1) {
            (Some(name), _) => name.to_string(),
            (None, 0) => crate::model::snake_case(kind),
            (None, k) => format!("{}_{k}", crate::model::snake_case(kind)),
        }
    }
}

impl Visit for ShapeCheck {
    type Value = Vec<usize>;

    fn input(&mut self, name: &str, shape: &[usize]) -> Result<Vec<usize>> {
        crate::model::check_input_shape(name, shape)?;
        Ok(shape.to_vec())
    }

    fn layer(
        &mut self,
        name: Option<&str>,
        config: &LayerConfig,
        x: &Vec<usize>,
        mask: Option<&Vec<usize>>,
    ) -> Result<(String, Vec<usize>)> {
        crate::nn::check_call(config.kind_name(), x, mask.map(Vec::as_slice))?;
        let (out, params) = config.shape_and_params(x)?;
        crate::nn::check_size(config.kind_name(), params, &out)?;
        self.params = self.params.and_then(|p| p.checked_add(params));
        let name = self.name(name, config.kind_name());
        let kind = config.kind_name();
        self.layers
            .insert(name.clone(), (kind, x.clone(), out.clone()));
        Ok((name, out))
    }

    fn merge(
        &mut self,
        name: Option<&str>,
        merge: Merge,
        xs: &[&Vec<usize>],
    ) -> Result<(String, Vec<usize>)> {
        let shapes: Vec<&[usize]> = xs.iter().map(|x| x.as_slice()).collect();
        let name = self.name(name, merge.kind());
        Ok((name, merge.output_shape(&shapes)?))
    }

    fn share(
        &mut self,
        target: &str,
        x: &Vec<usize>,
        mask: Option<&Vec<usize>>,
    ) -> Option<Result<Vec<usize>>> {
        let (kind, built_for, out) = self.layers.get(target)?;
        if let Err(e) = crate::nn::check_call(kind, x, mask.map(Vec::as_slice)) {
            return Some(Err(e));
        }
        Some(if built_for == x {
            Ok(out.clone())
        } else {
            Err(Error::invalid(format!(
                "layer '{target}' takes {built_for:?}, this call gives it {x:?}"
            )))
        })
    }
}

/// Checks the shapes of every layer, naming the entry at fault, without creating weights.
pub(crate) fn check(model: &ModelSection, layers: &[LayerEntry]) -> Result<(), (String, String)> {
    param_count(model, layers).map(|_| ())
}

/// The number of weights the layers declare (a shared layer's once), checking every
/// layer's shapes on the way; an error (field, message) names the entry at fault.
pub(crate) fn param_count(
    model: &ModelSection,
    layers: &[LayerEntry],
) -> Result<usize, (String, String)> {
    if layers.is_empty() {
        return Err(("layers".into(), "the model needs at least one layer".into()));
    }
    let overflow = || {
        (
            "layers".to_string(),
            "the parameter count overflows".to_string(),
        )
    };
    match plan(model, layers)? {
        Plan::Stack(shape) => {
            if shape.contains(&0) {
                return Err((
                    "model.input_shape".into(),
                    format!("must be non-empty with positive sizes, got {shape:?}"),
                ));
            }
            if crate::tensor::checked_numel(shape).is_none_or(|n| n > crate::nn::MAX_SAMPLE) {
                return Err((
                    "model.input_shape".into(),
                    format!(
                        "{shape:?} is too large (Ember's limit is {} values per sample)",
                        crate::nn::MAX_SAMPLE
                    ),
                ));
            }
            let mut sample = shape.to_vec();
            let mut total = 0usize;
            for (i, entry) in layers.iter().enumerate() {
                let config = entry.config().expect("a stack has plain layers");
                if let LayerConfig::Dense(DenseConfig { units: 0, .. }) = config {
                    return Err((format!("layers[{i}].units"), "must be at least 1".into()));
                }
                // Every layer must accept the previous one's output: checked here, with the
                // layer named, rather than when the model is built.
                let (out, params) = config
                    .shape_and_params(&sample)
                    .and_then(|(out, params)| {
                        crate::nn::check_size(config.kind_name(), params, &out)?;
                        Ok((out, params))
                    })
                    .map_err(|e| (format!("layers[{i}]"), e.detail()))?;
                total = total.checked_add(params).ok_or_else(overflow)?;
                sample = out;
            }
            Ok(total)
        }
        Plan::Graph => {
            let mut visit = ShapeCheck::new();
            walk(model, layers, &mut visit)?;
            visit.params.ok_or_else(overflow)
        }
    }
    .and_then(|total| match total <= crate::nn::MAX_PARAMS {
        true => Ok(total),
        false => Err((
            "layers".to_string(),
            format!(
                "the model would have {total} weights, more than Ember's limit of {}",
                crate::nn::MAX_PARAMS
            ),
        )),
    })
}

/// The summary table of the model the file describes, from each layer's declared output
/// shape and parameter count: no weight is created (a file may declare more weights than
/// memory holds, and the table needs none). It equals `build()?.summary()`'s.
pub(crate) fn summary(
    model: &ModelSection,
    layers: &[LayerEntry],
) -> Result<SummaryTable, (String, String)> {
    // Every shape and size checked, the entry at fault named.
    param_count(model, layers)?;
    let field = |i: usize| move |e: Error| (format!("layers[{i}]"), e.detail());
    match plan(model, layers)? {
        Plan::Stack(shape) => {
            let mut kinds = KindCounts::default();
            let mut sample = shape.to_vec();
            let mut table = SummaryTable {
                functional: false,
                inputs: Vec::new(),
                rows: Vec::new(),
                total: 0,
                trainable: 0,
            };
            for (i, entry) in layers.iter().enumerate() {
                let config = entry.config().expect("a stack has plain layers");
                let (out, params) = config.shape_and_params(&sample).map_err(field(i))?;
                let frozen = match entry.trainable {
                    true => config.non_trainable_params(&sample),
                    false => params,
                };
                let kind = config.kind_name();
                let name = kinds.next_name(kind);
                kinds.add(kind);
                table.rows.push(SummaryRow {
                    name,
                    kind,
                    output: Some(out.clone()),
                    params,
                    connected: Vec::new(),
                });
                table.total += params;
                table.trainable += params - frozen;
                sample = out;
            }
            Ok(table)
        }
        Plan::Graph => {
            let mut visit = SummaryWalk {
                check: ShapeCheck::new(),
                inputs: Vec::new(),
                rows: Vec::new(),
                frozen: Vec::new(),
                calls: Vec::new(),
                row_of: HashMap::new(),
            };
            let walked = walk(model, layers, &mut visit)?;
            // A layer the file freezes trains none of its weights.
            for (entry, name) in layers.iter().zip(&walked.names) {
                if let (false, Some(&r)) = (entry.trainable, visit.row_of.get(name)) {
                    visit.frozen[r] = visit.rows[r].params;
                }
            }
            let total: usize = visit.rows.iter().map(|r| r.params).sum();
            Ok(SummaryTable {
                functional: true,
                inputs: visit.inputs,
                rows: visit.rows,
                total,
                trainable: total - visit.frozen.iter().sum::<usize>(),
            })
        }
    }
}

/// Walks a graph as [`ShapeCheck`] does, gathering the summary's rows: a value is its shape
/// and the name the summary gives it (`layer[call][0]`).
struct SummaryWalk {
    check: ShapeCheck,
    inputs: Vec<(String, Vec<usize>)>,
    rows: Vec<SummaryRow>,
    /// Each row's weights the optimizer never trains.
    frozen: Vec<usize>,
    /// Each row's calls so far.
    calls: Vec<usize>,
    /// Each layer's row.
    row_of: HashMap<String, usize>,
}

impl SummaryWalk {
    fn add_row(&mut self, row: SummaryRow, frozen: usize) -> String {
        let name = row.name.clone();
        self.row_of.insert(name.clone(), self.rows.len());
        self.rows.push(row);
        self.frozen.push(frozen);
        self.calls.push(1);
        name
    }
}

type Named = (Vec<usize>, String);

impl Visit for SummaryWalk {
    type Value = Named;

    fn input(&mut self, name: &str, shape: &[usize]) -> Result<Named> {
        let shape = self.check.input(name, shape)?;
        self.inputs.push((name.to_string(), shape.clone()));
        Ok((shape, format!("{name}[0][0]")))
    }

    fn layer(
        &mut self,
        name: Option<&str>,
        config: &LayerConfig,
        x: &Named,
        mask: Option<&Named>,
    ) -> Result<(String, Named)> {
        let (name, out) = self.check.layer(name, config, &x.0, mask.map(|m| &m.0))?;
        let (_, params) = config.shape_and_params(&x.0)?;
        let row = SummaryRow {
            name,
            kind: config.kind_name(),
            output: Some(out.clone()),
            params,
            connected: std::iter::once(&x.1)
                .chain(mask.map(|m| &m.1))
                .cloned()
                .collect(),
        };
        let name = self.add_row(row, config.non_trainable_params(&x.0));
        let label = format!("{name}[0][0]");
        Ok((name, (out, label)))
    }

    fn merge(
        &mut self,
        name: Option<&str>,
        merge: Merge,
        xs: &[&Named],
    ) -> Result<(String, Named)> {
        let shapes: Vec<&Vec<usize>> = xs.iter().map(|x| &x.0).collect();
        let (name, out) = self.check.merge(name, merge, &shapes)?;
        let row = SummaryRow {
            name,
            kind: merge.kind(),
            output: Some(out.clone()),
            params: 0,
            connected: xs.iter().map(|x| x.1.clone()).collect(),
        };
        let name = self.add_row(row, 0);
        let label = format!("{name}[0][0]");
        Ok((name, (out, label)))
    }

    fn share(&mut self, target: &str, x: &Named, mask: Option<&Named>) -> Option<Result<Named>> {
        let out = match self.check.share(target, &x.0, mask.map(|m| &m.0))? {
            Ok(out) => out,
            Err(e) => return Some(Err(e)),
        };
        let &r = self.row_of.get(target)?;
        let row = &mut self.rows[r];
        // The calls so far number the new one.
        let call = self.calls[r];
        self.calls[r] += 1;
        row.connected.push(x.1.clone());
        if let Some(m) = mask {
            row.connected.push(m.1.clone());
        }
        Some(Ok((out, format!("{target}[{call}][0]"))))
    }
}

/// Builds the layers of a graph, each on its first call.
struct Build {
    graph: Graph,
    layers: HashMap<String, GraphLayer>,
}

impl Visit for Build {
    type Value = SymbolicTensor;

    fn input(&mut self, name: &str, shape: &[usize]) -> Result<SymbolicTensor> {
        self.graph.input(name, shape)
    }

    fn layer(
        &mut self,
        name: Option<&str>,
        config: &LayerConfig,
        x: &SymbolicTensor,
        mask: Option<&SymbolicTensor>,
    ) -> Result<(String, SymbolicTensor)> {
        let layer = self.graph.add_boxed(name, config.to_layer())?;
        let out = match mask {
            Some(mask) => layer.call_masked(x, mask)?,
            None => layer.call(x)?,
        };
        let name = layer.name();
        self.layers.insert(name.clone(), layer);
        Ok((name, out))
    }

    fn merge(
        &mut self,
        name: Option<&str>,
        merge: Merge,
        xs: &[&SymbolicTensor],
    ) -> Result<(String, SymbolicTensor)> {
        let name = match name {
            Some(n) => n.to_string(),
            None => self.graph.default_name(merge.kind())?,
        };
        Ok((name.clone(), self.graph.merge_named(&name, merge, xs)?))
    }

    fn share(
        &mut self,
        target: &str,
        x: &SymbolicTensor,
        mask: Option<&SymbolicTensor>,
    ) -> Option<Result<SymbolicTensor>> {
        let layer = self.layers.get(target)?;
        Some(match mask {
            Some(mask) => layer.call_masked(x, mask),
            None => layer.call(x),
        })
    }
}

fn build_graph(
    model: &ModelSection,
    layers: &[LayerEntry],
    seed: u64,
) -> Result<Model, (String, String)> {
    let mut visit = Build {
        graph: Graph::with_seed(seed),
        layers: HashMap::new(),
    };
    let walked = walk(model, layers, &mut visit)?;
    let inputs: Vec<&SymbolicTensor> = walked.inputs.iter().collect();
    let outputs: Vec<&SymbolicTensor> = walked.outputs.iter().collect();
    let mut model = Model::new(&inputs, &outputs).map_err(|e| ("model".to_string(), e.detail()))?;
    for (i, (entry, name)) in layers.iter().zip(&walked.names).enumerate() {
        if !entry.trainable {
            model
                .set_trainable(name, false)
                .map_err(|e| (format!("layers[{i}].trainable"), e.detail()))?;
        }
    }
    Ok(model)
}

/// The `[model]` and `[[layers]]` that rebuild `model` (the other direction).
pub(crate) fn describe(model: &Model) -> (ModelSection, Vec<LayerEntry>) {
    if model.is_sequential() {
        let section = ModelSection {
            input_shape: model.input_shape().to_vec(),
            ..ModelSection::default()
        };
        let layers = model
            .entries()
            .map(|(_, config, trainable)| LayerEntry {
                trainable,
                ..LayerEntry::from(config.expect("a stack has plain layers"))
            })
            .collect();
        return (section, layers);
    }
    let section = ModelSection {
        input_shape: Vec::new(),
        inputs: model
            .inputs()
            .iter()
            .map(|i| InputEntry {
                name: i.name.clone(),
                shape: i.shape.clone(),
            })
            .collect(),
        outputs: model.output_names(),
    };
    let layers = model
        .call_list()
        .into_iter()
        .map(|call| LayerEntry {
            name: Some(call.name),
            kind: match (call.first, call.config, call.merge) {
                (false, _, _) => LayerKind::Shares(call.layer),
                (true, Some(config), _) => LayerKind::Layer(config),
                (true, None, Some(merge)) => LayerKind::Merge(merge),
                (true, None, None) => unreachable!("a call is of a layer or a merge"),
            },
            inputs: Some(call.inputs),
            // A shared call's layer says whether it trains, at its first call.
            trainable: call.trainable || !call.first,
        })
        .collect();
    (section, layers)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::spec::ModelSpec;
    use crate::tensor::Tensor;

    /// The issue's example: h1 → h2, sum = h1 + h2, probs; plus a shared call and a frozen layer.
    const GRAPH: &str = r#"
[model]
inputs = [{ name = "pixels", shape = [6] }, { name = "other", shape = [6] }]
outputs = ["probs"]

[[layers]]
name = "h1"
type = "dense"
units = 4
activation = "relu"
inputs = ["pixels"]

[[layers]]
name = "h2"
type = "dense"
units = 4
activation = "relu"
trainable = false

[[layers]]
name = "h1_other"
shares = "h1"
inputs = ["other"]

[[layers]]
name = "sum"
type = "add"
inputs = ["h1", "h2", "h1_other"]

[[layers]]
name = "probs"
type = "dense"
units = 3
activation = "softmax"
inputs = ["sum"]

[compile]
optimizer = { type = "adam" }
loss = "sparse_categorical_crossentropy"
metrics = ["accuracy"]
"#;

    fn parse(text: &str) -> crate::Result<ModelSpec> {
        ModelSpec::parse(text, Path::new("g.toml"))
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn the_graph_form_builds_and_round_trips() {
        let spec = parse(GRAPH).unwrap();
        let model = spec.build().unwrap();
        assert_eq!(model.inputs().len(), 2);
        // h1 is counted once though called twice.
        assert_eq!(
            model.count_params(),
            (6 * 4 + 4) + (4 * 4 + 4) + (4 * 3 + 3)
        );
        assert_eq!(model.count_trainable_params(), model.count_params() - 20);
        assert!(!model.is_trainable("h2").unwrap());
        let summary = model.summary();
        assert!(
            summary.contains("h1[0][0], h2[0][0], h1[1][0]"),
            "{summary}"
        );
        assert!(summary.contains("pixels[0][0], other[0][0]"), "{summary}");
        // Model → file → model: the same file, and the same layers.
        let back = ModelSpec::from_model(&model, spec.fit.clone(), None).unwrap();
        let text = back.to_toml().unwrap();
        let again = parse(&text).unwrap();
        assert_eq!(again, back);
        assert_eq!(again.build().unwrap().summary(), summary);
        assert!(text.contains("shares = \"h1\""), "{text}");
        assert!(text.contains("trainable = false"), "{text}");
    }

    #[test]
    fn todays_stacks_keep_their_form() {
        let stack = r#"
[model]
input_shape = [4]

[[layers]]
type = "dense"
units = 3
trainable = false

[compile]
optimizer = { type = "sgd", learning_rate = 0.1 }
loss = "mse"
"#;
        let spec = parse(stack).unwrap();
        let model = spec.build().unwrap();
        assert!(model.is_sequential());
        assert_eq!(model.count_trainable_params(), 0);
        let back = ModelSpec::from_model(&model, spec.fit.clone(), None).unwrap();
        assert_eq!(back.layers, spec.layers);
        assert!(!back.to_toml().unwrap().contains("inputs"));
    }

    #[test]
    fn graph_mistakes_name_the_field() {
        let cases = [
            (
                GRAPH.replace("inputs = [\"sum\"]", "inputs = [\"nowhere\"]"),
                "layers[4].inputs",
                "nowhere",
            ),
            (
                GRAPH.replace("shares = \"h1\"", "shares = \"h9\""),
                "layers[2].shares",
                "h9",
            ),
            (
                GRAPH.replace("name = \"sum\"", "name = \"h1\""),
                "layers[3].name",
                "used twice",
            ),
            (
                GRAPH.replace("outputs = [\"probs\"]", "outputs = [\"prob\"]"),
                "model.outputs",
                "prob",
            ),
            (
                GRAPH.replace(
                    "inputs = [\"h1\", \"h2\", \"h1_other\"]",
                    "inputs = [\"h1\", \"pixels\"]",
                ),
                "layers[3]",
                "one shape",
            ),
            (
                GRAPH.replace(
                    "outputs = [\"probs\"]\n",
                    "outputs = [\"probs\"]\ninput_shape = [6]\n",
                ),
                "model",
                "not both",
            ),
            (
                GRAPH.replace(
                    "name = \"h1_other\"",
                    "name = \"h1_other\"\ntrainable = false",
                ),
                "layers[2]",
                "set `trainable` on that layer",
            ),
            (
                GRAPH.replace(
                    "shape = [6] }, { name = \"other\", shape = [6]",
                    "shape = [6] }, { name = \"other\", shape = [5]",
                ),
                "layers[2]",
                "[6]",
            ),
        ];
        for (text, field, words) in cases {
            let e = error(&text);
            assert!(
                e.contains(field) && e.contains(words),
                "{field} / {words}: {e}"
            );
        }
        // A stack whose layers name inputs must say what its inputs are.
        let e = error(&GRAPH.replace(
            "inputs = [{ name = \"pixels\", shape = [6] }, { name = \"other\", shape = [6] }]\noutputs = [\"probs\"]",
            "input_shape = [6]",
        ));
        assert!(e.contains("model.inputs"), "{e}");
    }

    /// Token ids and a padding mask of any length (0, Keras's None), a transformer block
    /// reading both, and a tag per token.
    const SEQUENCE: &str = r#"
[model]
inputs = [{ name = "ids", shape = [0] }, { name = "mask", shape = [0] }]
outputs = ["tags"]

[[layers]]
name = "embed"
type = "embedding"
input_dim = 50
output_dim = 8
inputs = ["ids"]

[[layers]]
name = "block"
type = "transformer_encoder"
num_heads = 2
intermediate_dim = 16
inputs = ["embed", "mask"]

[[layers]]
name = "tags"
type = "dense"
units = 3
activation = "softmax"

[compile]
optimizer = { type = "adam" }
loss = "mean_squared_error"
"#;

    #[test]
    fn sequences_of_any_length_and_padding_masks_in_the_model_file() {
        let spec = parse(SEQUENCE).unwrap();
        let model = spec.build().unwrap();
        let summary = model.summary();
        assert!(summary.contains("(None, None, 8)"), "{summary}");
        assert!(summary.contains("embed[0][0], mask[0][0]"), "{summary}");
        let ids = Tensor::new(&[1, 3], vec![4.0, 9.0, 1.0]).unwrap();
        let mask = Tensor::new(&[1, 3], vec![1.0, 1.0, 0.0]).unwrap();
        let tags = model.predict_many(&[&ids, &mask], 8).unwrap();
        assert_eq!(tags[0].shape(), &[1, 3, 3]);
        let back = ModelSpec::from_model(&model, spec.fit.clone(), None).unwrap();
        let text = back.to_toml().unwrap();
        assert_eq!(parse(&text).unwrap(), back);
        assert!(text.contains("inputs = [\"embed\", \"mask\"]"), "{text}");
        for (from, to, field, message) in [
            (
                "type = \"dense\"\nunits = 3\nactivation = \"softmax\"",
                "type = \"flatten\"",
                "layers[2]",
                "needs samples of fixed sizes, got (None, 8)",
            ),
            (
                "inputs = [\"embed\", \"mask\"]",
                "inputs = [\"embed\", \"ids\", \"mask\"]",
                "layers[1].inputs",
                "got 3",
            ),
            (
                "inputs = [\"embed\", \"mask\"]",
                "inputs = [\"embed\", \"embed\"]",
                "layers[1]",
                "padding mask",
            ),
            (
                "name = \"tags\"\ntype = \"dense\"",
                "name = \"tags\"\ninputs = [\"block\", \"mask\"]\ntype = \"dense\"",
                "layers[2]",
                "Dense takes one input",
            ),
        ] {
            let text = SEQUENCE.replace(from, to);
            assert_ne!(text, SEQUENCE, "{from}");
            let err = error(&text);
            assert!(err.contains(field) && err.contains(message), "{err}");
        }
    }

    #[test]
    fn absurd_sizes_are_refused_before_anything_is_allocated() {
        let stack = |input: &str, layer: &str| {
            format!(
                "[model]\ninput_shape = {input}\n\n[[layers]]\n{layer}\n\n[compile]\n\
                 optimizer = {{ type = \"adam\" }}\nloss = \"mean_squared_error\"\n"
            )
        };
        for (input, layer, says) in [
            (
                "[784]",
                "type = \"dense\"\nunits = 1000000000",
                "limit of 1073741824",
            ),
            (
                "[1000000000000]",
                "type = \"dense\"\nunits = 1",
                "too large",
            ),
            (
                "[20]",
                "type = \"embedding\"\ninput_dim = 1000000000\noutput_dim = 8",
                "limit of 1073741824",
            ),
            (
                "[28, 28, 1]",
                "type = \"conv2d\"\nfilters = 100000000\nkernel_size = 3",
                "values per sample",
            ),
        ] {
            let err = error(&stack(input, layer));
            assert!(err.contains(says), "{layer}: {err}");
            assert!(
                !err.contains("invalid argument"),
                "no kind inside the field's message: {err}"
            );
        }
        // The same through the Rust API, and for graph inputs.
        let mut model = crate::model::Sequential::with_seed(&[784], 1);
        let err = model
            .add(crate::nn::Dense::new(1 << 31))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("more than Ember's limit"), "{err}");
        let g = crate::model::Graph::new();
        assert!(g.input("x", &[1 << 20, 1 << 20]).is_err());
        // Within the limits, all is as before.
        let fine = stack("[784]", "type = \"dense\"\nunits = 64");
        assert_eq!(
            parse(&fine).unwrap().build().unwrap().count_params(),
            785 * 64
        );
    }
    #[test]
    fn a_files_summary_equals_the_built_models_without_building_it() {
        let stack_with_frozen_normalization = r#"
[model]
input_shape = [6, 6, 2]

[[layers]]
type = "conv2d"
filters = 3
kernel_size = 3

[[layers]]
type = "batch_normalization"

[[layers]]
type = "batch_normalization"
trainable = false

[[layers]]
type = "flatten"

[[layers]]
type = "dense"
units = 2
activation = "softmax"

[compile]
optimizer = { type = "adam" }
loss = "sparse_categorical_crossentropy"
"#;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let mut texts = vec![
            GRAPH.to_string(),
            SEQUENCE.to_string(),
            stack_with_frozen_normalization.to_string(),
        ];
        for name in [
            "mnist-mlp.toml",
            "mnist-cnn.toml",
            "mnist-residual.toml",
            "mnist-dp.toml",
            "digits-folder.toml",
        ] {
            texts.push(std::fs::read_to_string(root.join(name)).unwrap());
        }
        for text in &texts {
            let spec = parse(text).unwrap();
            assert_eq!(
                spec.summary().unwrap(),
                spec.build().unwrap().summary(),
                "{text}"
            );
        }
        // A model too large to build whole still has its table, at once: a million units
        // (3.1 GB of weights) are counted, not allocated.
        let huge = parse(
            &std::fs::read_to_string(root.join("mnist-mlp.toml"))
                .unwrap()
                .replacen("units = 64", "units = 1000000", 1),
        )
        .unwrap();
        let table = huge.summary().unwrap();
        assert!(table.contains("785,000,000"), "{table}");
        // Mistakes still name their entry.
        let bad = GRAPH.replace("inputs = [\"sum\"]", "inputs = [\"nothing\"]");
        let message = parse(&bad)
            .and_then(|spec| spec.summary())
            .unwrap_err()
            .to_string();
        assert!(message.contains("nothing"), "{message}");
    }
}
