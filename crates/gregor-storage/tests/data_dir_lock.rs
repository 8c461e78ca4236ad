//! One store per data dir: a second open is refused with a message naming
//! the holder, and the dir is free again once the first store is dropped.
#![allow(clippy::unwrap_used)]

use std::io::ErrorKind;

use gregor_storage::{DataDirInUse, StorageError, Store, StoreOptions};

#[test]
fn second_open_names_the_holder_and_drop_releases() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open_sled(dir.path(), StoreOptions::default()).unwrap();

    let Err(err) = Store::open_sled(dir.path(), StoreOptions::default()) else {
        panic!("a second store opened on a data dir in use");
    };
    let StorageError::Io(io) = &err else {
        panic!("expected StorageError::Io, got {err:?}");
    };
    assert_eq!(io.kind(), ErrorKind::ResourceBusy);
    let in_use = io
        .get_ref()
        .and_then(|e| e.downcast_ref::<DataDirInUse>())
        .unwrap_or_else(|| panic!("not a DataDirInUse: {err:?}"));
    assert_eq!(in_use.pid, Some(std::process::id()));
    assert_eq!(
        in_use.to_string(),
        format!(
            "data dir {} is in use by another gregor process (pid {})",
            dir.path().display(),
            std::process::id()
        )
    );
    assert!(!err.to_string().contains('\n'), "{err}");

    drop(first);
    let again = Store::open_sled(dir.path(), StoreOptions::default()).unwrap();
    drop(again);
}
