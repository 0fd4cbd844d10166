//! `spin:key-value/key-value@3.0.0` over a [`KvBackend`](super::KvBackend).

use std::sync::Arc;

use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

use super::{Kv, KvError, KvView, OpenDenied, StoreHandle, blocking, read};
use crate::bindings::spin::key_value::key_value::{self, Error};

binding_errors!(Error);

/// The backend and store label behind `store`.
fn resolve<T>(
    accessor: &Accessor<T, Kv>,
    store: &Resource<StoreHandle>,
) -> wasmtime::Result<(Arc<dyn super::KvBackend>, Arc<str>)> {
    accessor.with(|mut access| {
        let view = access.get();
        let handle = view.table.get(store)?;
        Ok((view.ctx.backend.clone(), handle.label.clone()))
    })
}

impl key_value::Host for KvView<'_> {}

impl key_value::HostStore for KvView<'_> {
    fn drop(&mut self, store: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl<T> key_value::HostStoreWithStore<T> for Kv {
    async fn open(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, Error>> {
        accessor.with(|mut access| {
            let view = access.get();
            if let Err(denied) = view.ctx.access.check(&label) {
                return Ok(Err(denied.into()));
            }
            let handle = StoreHandle {
                label: label.into(),
            };
            match view.table.push(handle) {
                Ok(resource) => Ok(Ok(resource)),
                Err(_) => Ok(Err(Error::StoreTableFull)),
            }
        })
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let (backend, label) = resolve(accessor, &store)?;
        Ok(read(backend, label, move |b, label| b.get(label, &key))
            .await
            .map_err(Error::from))
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (backend, label) = resolve(accessor, &store)?;
        Ok(blocking(move || backend.set(&label, &key, &value))
            .await
            .map_err(Error::from))
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (backend, label) = resolve(accessor, &store)?;
        Ok(blocking(move || backend.delete(&label, &key))
            .await
            .map_err(Error::from))
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let (backend, label) = resolve(accessor, &store)?;
        Ok(read(backend, label, move |b, label| b.exists(label, &key))
            .await
            .map_err(Error::from))
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        store: Resource<StoreHandle>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), Error>>)> {
        let (backend, label) = resolve(accessor, &store)?;
        let (keys, result) = match read(backend, label, |b, label| b.keys(label)).await {
            Ok(keys) => (keys, Ok(())),
            Err(error) => (Vec::new(), Err(Error::from(error))),
        };
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, keys)?;
            let future =
                FutureReader::new(&mut access, async move { wasmtime::error::Ok(result) })?;
            Ok((stream, future))
        })
    }
}
