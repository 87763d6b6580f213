//! Conversations: messages laid out in the model's chat template (ChatML, as SmolLM2 and
//! Qwen2.5 use, or Llama 3's headers) as token ids. Special tokens come only from the
//! template: a user who types `<|im_end|>` gets those characters, not the token.

use crate::error::{Error, Result};
use crate::llm::generate::{generate_after, GenerateOptions, Generation};
use crate::llm::llama::KvCache;
use crate::llm::LanguageModel;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// The role called `name` (OpenAI's names).
    pub fn parse(name: &str) -> Result<Role> {
        match name {
            "system" | "developer" => Ok(Role::System),
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            other => Err(Error::invalid(format!(
                "unknown role '{other}' (system, user or assistant)"
            ))),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
        }
    }
}

/// The layouts of chat templates Ember knows.
#[derive(Clone, Debug, PartialEq)]
pub enum Template {
    /// `<|im_start|>role\ncontent<|im_end|>\n`, with the system prompt the template writes
    /// when the conversation has none.
    ChatMl { default_system: Option<String> },
    /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`.
    Llama3,
}

impl Template {
    /// The layout of the model's template; a file without one is refused rather than given
    /// a layout it was not trained on.
    pub fn of(model: &LanguageModel) -> Result<Template> {
        let Some(t) = &model.vocab.chat_template else {
            return Err(Error::invalid(
                "the model's file has no chat template, so it cannot chat; `ember generate` still continues a prompt written out",
            ));
        };
        if t.contains("<|im_start|>") {
            // SmolLM2's and Qwen2.5's templates write a default system message, as a quoted
            // literal, when the first message is not the system's.
            // The template's newlines are written as newlines or as `\n` escapes.
            // The first such literal without template syntax in it (Qwen2.5's first one is
            // its tools branch).
            let default_system = ["<|im_start|>system\n", "<|im_start|>system\\n"]
                .iter()
                .flat_map(|marker| {
                    t.match_indices(marker)
                        .map(move |(at, _)| at + marker.len())
                })
                .find_map(|start| {
                    let rest = &t[start..];
                    let end = rest.find("<|im_end|>")?;
                    let text = &rest[..end];
                    (!text.contains("{{") && !text.contains("{%") && !text.contains('\''))
                        .then(|| text.replace("\\n", "\n"))
                });
            return Ok(Template::ChatMl { default_system });
        }
        if t.contains("<|start_header_id|>") {
            return Ok(Template::Llama3);
        }
        Err(Error::invalid(
            "the model's chat template is neither ChatML nor Llama 3's; use `ember generate` with a prompt written out",
        ))
    }

    /// The token ids of `messages`, ending with the opening of the assistant's turn.
    pub fn prompt(&self, model: &LanguageModel, messages: &[Message]) -> Result<Vec<u32>> {
        let v = &model.vocab;
        let special = |name: &str| {
            v.id(name).ok_or_else(|| {
                Error::invalid(format!("the model's vocabulary has no {name} token"))
            })
        };
        let mut ids: Vec<u32> = v.bos.filter(|_| v.add_bos).into_iter().collect();
        match self {
            Template::ChatMl { default_system } => {
                let (start, end) = (special("<|im_start|>")?, special("<|im_end|>")?);
                let turn = |role: &str, content: &str, ids: &mut Vec<u32>| -> Result<()> {
                    ids.push(start);
                    ids.extend(v.encode(&format!("{role}\n{content}"), false)?);
                    ids.push(end);
                    ids.extend(v.encode("\n", false)?);
                    Ok(())
                };
                if let (Some(system), Some(first)) = (default_system, messages.first()) {
                    if first.role != Role::System {
                        turn("system", system, &mut ids)?;
                    }
                }
                for m in messages {
                    turn(m.role.name(), &m.content, &mut ids)?;
                }
                ids.push(start);
                ids.extend(v.encode("assistant\n", false)?);
            }
            Template::Llama3 => {
                let (start, end, eot) = (
                    special("<|start_header_id|>")?,
                    special("<|end_header_id|>")?,
                    special("<|eot_id|>")?,
                );
                for m in messages {
                    ids.push(start);
                    ids.extend(v.encode(m.role.name(), false)?);
                    ids.push(end);
                    ids.extend(v.encode(&format!("\n\n{}", m.content.trim()), false)?);
                    ids.push(eot);
                }
                ids.push(start);
                ids.extend(v.encode("assistant", false)?);
                ids.push(end);
                ids.extend(v.encode("\n\n", false)?);
            }
        }
        Ok(ids)
    }
}

/// A multi-turn conversation that keeps its key–value cache between turns, so each turn
/// runs only its new tokens.
pub struct Chat<'m> {
    model: &'m LanguageModel,
    template: Template,
    pub messages: Vec<Message>,
    cache: KvCache,
    /// The tokens the cache holds.
    cached: Vec<u32>,
}

impl<'m> Chat<'m> {
    pub fn new(model: &'m LanguageModel, system: Option<&str>) -> Result<Chat<'m>> {
        Ok(Chat {
            template: Template::of(model)?,
            messages: system
                .map(|s| Message::new(Role::System, s))
                .into_iter()
                .collect(),
            cache: model.llama.cache(),
            cached: Vec::new(),
            model,
        })
    }

    /// Adds the user's `text`, generates the reply (streamed to `on_text`) and adds it.
    pub fn say(
        &mut self,
        text: &str,
        options: &GenerateOptions,
        on_text: impl FnMut(&str) -> Result<()>,
    ) -> Result<Generation> {
        self.messages.push(Message::new(Role::User, text));
        let prompt = self.template.prompt(self.model, &self.messages)?;
        let reply = self.reply(&prompt, options, on_text);
        match reply {
            Ok(g) => {
                self.messages
                    .push(Message::new(Role::Assistant, g.text.trim().to_string()));
                Ok(g)
            }
            Err(e) => {
                self.messages.pop();
                Err(e)
            }
        }
    }

    fn reply(
        &mut self,
        prompt: &[u32],
        options: &GenerateOptions,
        on_text: impl FnMut(&str) -> Result<()>,
    ) -> Result<Generation> {
        // Reuse the cached prefix; at least the last prompt token is run again for its logits.
        let common = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        let keep = common.min(prompt.len() - 1);
        self.cache.truncate(keep);
        self.cached.truncate(keep);
        let g = generate_after(
            self.model,
            &mut self.cache,
            &prompt[..keep],
            &prompt[keep..],
            options,
            on_text,
        )?;
        // The cache holds the prompt and the generated tokens that were run (the last one
        // sampled may not have been).
        self.cached.extend_from_slice(&prompt[keep..]);
        self.cached.extend_from_slice(&g.tokens);
        self.cached.truncate(self.cache.len());
        Ok(g)
    }

    /// Forgets the conversation (the system prompt stays).
    pub fn reset(&mut self) {
        self.messages.retain(|m| m.role == Role::System);
        self.cache.truncate(0);
        self.cached.clear();
    }
}
