//! `file` output: appends events to files named by a sprintf `path`
//! (`/var/log/app/%{service}-%{+yyyy-MM-dd}.log`), creating directories as needed.

use super::{Outcomes, Output, OutputError};
use crate::codecs::Encoder;
use crate::config::Error;
use crate::event::sprintf::Template;
use crate::event::Event;
use crate::plugin::Options;
use std::collections::HashMap;
use std::path::PathBuf;
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;

/// Files left unwritten this long are closed.
const IDLE_CLOSE: std::time::Duration = std::time::Duration::from_secs(60);

pub struct FileOutput {
    path: Template,
    encoder: Encoder,
    files: tokio::sync::Mutex<HashMap<PathBuf, (File, std::time::Instant)>>,
}

impl FileOutput {
    pub fn build(opts: &mut Options) -> Result<FileOutput, Error> {
        let path = opts
            .template("path")?
            .ok_or_else(|| opts.error("file output requires option `path`"))?;
        Ok(FileOutput {
            path,
            encoder: Encoder::build(opts.codec()?, "json_lines")?,
            files: tokio::sync::Mutex::new(HashMap::new()),
        })
    }
}

fn io(path: &std::path::Path, what: &str) -> impl FnOnce(std::io::Error) -> OutputError {
    let context = format!("{what} {}", path.display());
    move |source| OutputError::Io { context, source }
}

#[async_trait::async_trait]
impl Output for FileOutput {
    async fn send(&self, events: &[&Event]) -> Result<Outcomes, OutputError> {
        // Group by rendered path so each file gets one write per batch.
        let mut groups: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        for e in events {
            let path = PathBuf::from(self.path.render(e).as_ref());
            let idx = match groups.iter().position(|(p, _)| *p == path) {
                Some(i) => i,
                None => {
                    groups.push((path, Vec::with_capacity(4096)));
                    groups.len() - 1
                }
            };
            self.encoder.encode(e, &mut groups[idx].1);
        }
        let mut files = self.files.lock().await;
        let now = std::time::Instant::now();
        for (path, buf) in groups {
            if !files.contains_key(&path) {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(io(dir, "cannot create directory"))?;
                }
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .await
                    .map_err(io(&path, "cannot open"))?;
                files.insert(path.clone(), (f, now));
            }
            if let Some((f, used)) = files.get_mut(&path) {
                f.write_all(&buf).await.map_err(io(&path, "cannot write"))?;
                f.flush().await.map_err(io(&path, "cannot flush"))?;
                *used = now;
            }
        }
        files.retain(|_, (_, used)| now.duration_since(*used) < IDLE_CLOSE);
        Ok(Outcomes::Delivered)
    }

    async fn close(&self) -> Result<(), OutputError> {
        let mut files = self.files.lock().await;
        for (path, (f, _)) in files.iter_mut() {
            f.flush().await.map_err(io(path, "cannot flush"))?;
            f.sync_data().await.map_err(io(path, "cannot sync"))?;
        }
        files.clear();
        Ok(())
    }
}
