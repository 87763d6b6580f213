//! Models and training: the functional `Model` and `Sequential`, compile / fit / evaluate /
//! predict, History, progress.

mod assess;
mod callback;
mod checks;
mod data_parallel;
mod evaluate;
mod fit;
mod functional;
mod gradients;
mod graph;
mod history;
mod interpreter;
mod private;
mod progress;
mod sequential;
mod softmax_regression;
mod step;
mod summary;

pub use assess::{Assessment, TopKAccuracy};
pub use callback::{Callback, Control};
pub use evaluate::Evaluation;
pub use fit::{check_epochs, split_point, FitOptions, Verbosity, MAX_BATCH_SIZE, MAX_EPOCHS};
pub(crate) use functional::{snake_case, KindCounts};
pub use functional::{InputSpec, Model};
pub use gradients::OutputGradients;
pub(crate) use graph::check_input_shape;
pub use graph::{Graph, GraphLayer, SymbolicTensor};
pub use history::{decimal, EpochLog, History};
pub use sequential::Sequential;
pub use softmax_regression::SoftmaxRegression;
pub(crate) use summary::{SummaryRow, SummaryTable};
