//! What a user asks for, as functions: called by the CLI, tune, the server and the Python
//! package alike. Each job takes a plain options struct, reports its progress through a
//! callback and returns a plain result; printing and HTTP stay with the callers.

pub mod audit;
pub mod checks;
pub mod cv;
pub mod data;
pub mod embed;
pub mod evaluate;
pub mod explain;
pub mod faq;
pub mod generate;
pub mod outputs;
pub mod predict;
pub mod recommend;
pub mod table;
pub mod train_file;
pub mod train_images;
pub mod train_table;
pub mod train_text;
