//! Text data sets: a folder with one subfolder per class and one document per file, read as
//! text (bytes that are not UTF-8 decoded lossily and counted), optionally parsed as e-mail;
//! or a column of a CSV table.

use std::path::{Path, PathBuf};

use crate::data::table::{CsvOptions, Table};
use crate::error::{Error, Result};

/// The documents of a folder, with their classes.
#[derive(Clone, Debug, Default)]
pub struct Documents {
    pub texts: Vec<String>,
    /// Class index of each document.
    pub labels: Vec<usize>,
    /// Class names, in index order.
    pub classes: Vec<String>,
    pub files: Vec<PathBuf>,
    /// Files whose bytes were not valid UTF-8 (decoded with replacement characters).
    pub lossy: usize,
    /// E-mails whose MIME structure could not be parsed (read as plain text instead).
    pub unparsed: Vec<(PathBuf, String)>,
}

/// Documents from a CSV file (read by [`Table`] with `options`): one per row, the text in
/// `text_column`, the class in `target` (classes sorted by name). A row without a class is an
/// error naming its line.
pub fn read_csv_documents(
    file: &Path,
    text_column: &str,
    target: &str,
    options: &CsvOptions,
) -> Result<Documents> {
    let table = Table::read(file, options)?;
    let (t, c) = (table.column(text_column)?, table.column(target)?);
    let mut rows = Vec::with_capacity(table.rows());
    for (r, &line) in table.lines.iter().enumerate() {
        let class = table.columns[c][r].as_deref().unwrap_or("");
        if class.is_empty() {
            return Err(Error::data(
                file,
                format!("line {line}: the class is empty"),
            ));
        }
        let text = table.columns[t][r].clone().unwrap_or_default();
        rows.push((text, class.to_string()));
    }
    let mut classes: Vec<String> = rows.iter().map(|(_, c)| c.clone()).collect();
    classes.sort();
    classes.dedup();
    if classes.len() < 2 {
        return Err(Error::data(file, "a classifier needs at least two classes"));
    }
    Ok(Documents {
        labels: rows
            .iter()
            .map(|(_, c)| classes.binary_search(c).expect("collected above"))
            .collect(),
        files: vec![file.to_path_buf(); rows.len()],
        texts: rows.into_iter().map(|(t, _)| t).collect(),
        classes,
        lossy: 0,
        unparsed: Vec::new(),
    })
}

/// How a table of documents is read: a header, commas, and no cell taken for a missing value
/// (a document may well say "NA").
pub fn document_csv_options() -> CsvOptions {
    CsvOptions {
        delimiter: Some(','),
        header: Some(true),
        missing: Vec::new(),
        ..CsvOptions::default()
    }
}

/// A class and the subfolders whose files belong to it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassFolders {
    pub class: String,
    pub folders: Vec<String>,
}

impl ClassFolders {
    /// Parses `NAME=FOLDER[,FOLDER…]`.
    pub fn parse(text: &str) -> Result<Self> {
        let (class, folders) = text
            .split_once('=')
            .ok_or_else(|| Error::invalid(format!("'{text}' is not NAME=FOLDER[,FOLDER…]")))?;
        let folders: Vec<String> = folders
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect();
        if class.trim().is_empty() || folders.is_empty() {
            return Err(Error::invalid(format!(
                "'{text}' is not NAME=FOLDER[,FOLDER…]"
            )));
        }
        Ok(ClassFolders {
            class: class.trim().to_string(),
            folders,
        })
    }
}

/// Reads every file under `dir`'s class folders: each subfolder is a class (sorted by name),
/// or, with `groups`, each group of subfolders is. With `email`, each file is parsed as an
/// RFC 822 message and reduced to [`email_text`].
pub fn read_text_folder(dir: &Path, groups: &[ClassFolders], email: bool) -> Result<Documents> {
    let groups: Vec<ClassFolders> = if groups.is_empty() {
        crate::data::image_folder::class_folders(dir, "documents")?
            .into_iter()
            .map(|c| ClassFolders {
                class: c.clone(),
                folders: vec![c],
            })
            .collect()
    } else {
        groups.to_vec()
    };
    // One folder in two classes would teach both labels for the same documents.
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for group in &groups {
        if seen.iter().any(|(_, class)| *class == group.class) {
            return Err(Error::invalid(format!(
                "class '{}' is given twice (--class NAME=FOLDER[,FOLDER…] once per class)",
                group.class
            )));
        }
        for folder in &group.folders {
            let same = |(f, _): &&(&str, &str)| dir.join(f) == dir.join(folder);
            if let Some((_, class)) = seen.iter().find(same) {
                return Err(Error::data(
                    dir.join(folder),
                    format!(
                        "the folder is in two classes, '{class}' and '{}'",
                        group.class
                    ),
                ));
            }
            seen.push((folder.as_str(), group.class.as_str()));
        }
        if group.folders.is_empty() {
            seen.push(("", group.class.as_str()));
        }
    }
    let mut docs = Documents {
        classes: groups.iter().map(|g| g.class.clone()).collect(),
        ..Documents::default()
    };
    for (label, group) in groups.iter().enumerate() {
        for folder in &group.folders {
            let path = dir.join(folder);
            let entries = std::fs::read_dir(&path).map_err(|e| Error::io(&path, e))?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for file in files {
                let bytes = crate::read::file(&file, crate::read::Limit::DOCUMENT)?;
                let lossy = std::str::from_utf8(&bytes).is_err();
                let text = if email {
                    match email_text(&bytes) {
                        Ok(text) => text,
                        Err(reason) => {
                            docs.unparsed.push((file.clone(), reason));
                            String::from_utf8_lossy(&bytes).into_owned()
                        }
                    }
                } else {
                    String::from_utf8_lossy(&bytes).into_owned()
                };
                docs.lossy += usize::from(lossy);
                docs.texts.push(text);
                docs.labels.push(label);
                docs.files.push(file);
            }
        }
    }
    for (label, class) in docs.classes.iter().enumerate() {
        if !docs.labels.contains(&label) {
            return Err(Error::data(
                dir,
                format!("class '{class}' has no documents"),
            ));
        }
    }
    Ok(docs)
}

/// The part of an e-mail a content classifier should read: the subject, then the text of the
/// body (text/plain parts, or text/html parts with their tags removed when there is no plain
/// text), decoded from quoted-printable or base64 and from its charset. Routing headers are
/// left out: they say which server or list a message came through, not what it says.
pub fn email_text(raw: &[u8]) -> std::result::Result<String, String> {
    use mailparse::MailHeaderMap;
    let mail = mailparse::parse_mail(raw).map_err(|e| e.to_string())?;
    let subject = mail.headers.get_first_value("Subject").unwrap_or_default();
    let (mut plain, mut html) = (Vec::new(), Vec::new());
    collect_parts(&mail, &mut plain, &mut html);
    let body = if plain.is_empty() {
        html.iter()
            .map(|h| strip_html(h))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        plain.join("\n")
    };
    Ok(format!("{}\n{}", subject.trim(), body.trim()))
}

fn collect_parts(part: &mailparse::ParsedMail, plain: &mut Vec<String>, html: &mut Vec<String>) {
    if !part.subparts.is_empty() {
        for sub in &part.subparts {
            collect_parts(sub, plain, html);
        }
        return;
    }
    let mime = part.ctype.mimetype.to_ascii_lowercase();
    let Ok(body) = part.get_body() else { return };
    if mime == "text/html" {
        html.push(body);
    } else if mime.starts_with("text/") {
        plain.push(body);
    }
}

/// Text of an HTML fragment: tags, scripts and styles removed, common entities decoded,
/// whitespace collapsed.
pub fn strip_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    let bytes = html.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b'<' {
            for skip in ["<script", "<style"] {
                if lower[i..].starts_with(skip) {
                    let close = format!("</{}", &skip[1..]);
                    i = lower[i..].find(&close).map_or(bytes.len(), |p| i + p);
                    break;
                }
            }
            i = html[i..].find('>').map_or(bytes.len(), |p| i + p + 1);
            out.push(' ');
        } else {
            let next = html[i..].find('<').map_or(bytes.len(), |p| i + p);
            out.push_str(&html[i..next]);
            i = next;
        }
    }
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_becomes_its_subject_and_decoded_body() {
        let raw = b"From someone@example.com Mon Jan 1 00:00:00 2002\r\n\
Received: from mail.example.com\r\n\
Subject: Cheap =?utf-8?q?caf=C3=A9?= offers\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"XX\"\r\n\
\r\n\
--XX\r\n\
Content-Type: text/html\r\n\
\r\n\
<html><style>p {}</style><p>Buy &amp; save</p></html>\r\n\
--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Buy now and save 50=25 =E2=80=94 today only\r\n\
--XX--\r\n";
        let text = email_text(raw).unwrap();
        assert!(text.starts_with("Cheap café offers\n"), "{text}");
        assert!(text.contains("save 50% — today only"), "{text}");
        assert!(!text.contains("Received"), "{text}");
        assert!(!text.contains("<p>"), "{text}");
    }

    #[test]
    fn html_only_mail_is_stripped_of_tags() {
        assert_eq!(
            strip_html("<b>Hello</b>&nbsp;<script>x()</script>world &lt;3"),
            "Hello world <3"
        );
    }

    #[test]
    fn class_groups_parse_and_reject_bad_text() {
        let g = ClassFolders::parse("ham=easy-ham-1, hard-ham-1").unwrap();
        assert_eq!(g.class, "ham");
        assert_eq!(g.folders, ["easy-ham-1", "hard-ham-1"]);
        assert!(ClassFolders::parse("ham").is_err());
        assert!(ClassFolders::parse("=a").is_err());
    }

    #[test]
    fn a_folder_in_two_classes_or_a_class_given_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (folder, text) in [("a", "one"), ("b", "two")] {
            std::fs::create_dir(dir.path().join(folder)).unwrap();
            std::fs::write(dir.path().join(folder).join("1.txt"), text).unwrap();
        }
        let group = |text: &str| ClassFolders::parse(text).unwrap();
        let err = read_text_folder(dir.path(), &[group("x=a"), group("y=b,a")], false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("in two classes, 'x' and 'y'"), "{err}");
        let err = read_text_folder(dir.path(), &[group("x=a"), group("x=b")], false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("class 'x' is given twice"), "{err}");
        let docs = read_text_folder(dir.path(), &[group("x=a"), group("y=b")], false).unwrap();
        assert_eq!(docs.labels, [0, 1]);
        // Linked class folders are class folders; a folder without any says so in its terms.
        let linked = tempfile::tempdir().unwrap();
        for folder in ["a", "b"] {
            std::os::unix::fs::symlink(dir.path().join(folder), linked.path().join(folder))
                .unwrap();
        }
        let docs = read_text_folder(linked.path(), &[], false).unwrap();
        assert_eq!((docs.classes.len(), docs.texts.len()), (2, 2));
        let empty = tempfile::tempdir().unwrap();
        let err = read_text_folder(empty.path(), &[], false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a folder of documents holds one subfolder per class"),
            "{err}"
        );
    }
}
