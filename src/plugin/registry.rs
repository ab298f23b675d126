//! One table per plugin kind: name → constructor. The list of known names in error
//! messages is derived from the same table, so a plugin is registered in one place.

use super::Options;
use crate::config::Error;

/// Builds one plugin of kind `T` from its options.
pub type Constructor<T> = fn(&mut Options) -> Result<T, Error>;

/// The plugins of one kind, in the order their names are listed in messages.
pub struct Registry<T: 'static> {
    /// "input", "filter", "output" or "codec", for messages.
    pub kind: &'static str,
    pub entries: &'static [(&'static str, Constructor<T>)],
}

impl<T: 'static> Registry<T> {
    /// The constructor of plugin `name`.
    pub fn get(&self, name: &str) -> Option<Constructor<T>> {
        self.entries
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, build)| *build)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.entries.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names
    }

    /// Builds plugin `name` from `opts`; an unknown name is an error at the plugin's
    /// position that lists the known ones.
    pub fn build(&self, name: &str, opts: &mut Options) -> Result<T, Error> {
        match self.get(name) {
            Some(build) => build(opts),
            None => Err(opts.error(format!(
                "unknown {} plugin `{name}` (known: {})",
                self.kind,
                self.names().join(", ")
            ))),
        }
    }
}
