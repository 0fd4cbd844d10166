//! `wasi:keyvalue@0.2.0-draft2` for the native lane's policy components:
//! the same stores as [`wasi_kv`](super::wasi_kv), called synchronously on
//! the worker thread (the embedded store answers from memory; a network
//! backend makes the worker wait for its round trip).

use wasmtime::component::Resource;

use super::{CasHandle, KvError, KvView, OpenDenied, StoreHandle};
use crate::native::bindings::upshift::types::types;
use crate::native::bindings::wasi::keyvalue::{atomics, batch, store};
use store::{Error, KeyResponse};

binding_errors!(Error);

impl KvView<'_> {
    fn label(&self, bucket: &Resource<StoreHandle>) -> wasmtime::Result<std::sync::Arc<str>> {
        Ok(self.table.get(bucket)?.label.clone())
    }
}

impl store::Host for KvView<'_> {
    fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, Error>> {
        Ok(self.open_store(identifier)?.map_err(Error::from))
    }
}

impl store::HostBucket for KvView<'_> {
    fn get(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let label = self.label(&bucket)?;
        Ok(self.ctx.backend.get(&label, &key).map_err(Error::from))
    }

    fn set(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.label(&bucket)?;
        Ok(self
            .ctx
            .backend
            .set(&label, &key, &value)
            .map_err(Error::from))
    }

    fn delete(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.label(&bucket)?;
        Ok(self.ctx.backend.delete(&label, &key).map_err(Error::from))
    }

    fn exists(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let label = self.label(&bucket)?;
        Ok(self.ctx.backend.exists(&label, &key).map_err(Error::from))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<StoreHandle>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        let label = self.label(&bucket)?;
        Ok(self
            .ctx
            .backend
            .keys(&label)
            .map(|keys| KeyResponse {
                keys: match cursor {
                    Some(after) => keys.into_iter().filter(|k| *k > after).collect(),
                    None => keys,
                },
                cursor: None,
            })
            .map_err(Error::from))
    }

    fn drop(&mut self, bucket: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    fn increment(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let label = self.label(&bucket)?;
        Ok(self
            .ctx
            .backend
            .increment(&label, &key, delta)
            .map_err(Error::from))
    }

    fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let handle = self.table.delete(cas)?;
        let backend = &self.ctx.backend;
        let swapped = backend.compare_and_swap(
            &handle.label,
            &handle.key,
            handle.current.as_deref(),
            &value,
        );
        Ok(match swapped {
            Ok(true) => Ok(()),
            // Hand the guest a fresh CAS handle so it can retry.
            Ok(false) => match backend.get(&handle.label, &handle.key) {
                Ok(current) => {
                    let retry = self.table.push(CasHandle { current, ..handle })?;
                    Err(atomics::CasError::CasFailed(retry))
                }
                Err(error) => Err(atomics::CasError::StoreError(error.into())),
            },
            Err(error) => Err(atomics::CasError::StoreError(error.into())),
        })
    }
}

impl atomics::HostCas for KvView<'_> {
    fn new(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<CasHandle>, Error>> {
        let label = self.label(&bucket)?;
        let current = match self.ctx.backend.get(&label, &key) {
            Ok(current) => current,
            Err(error) => return Ok(Err(error.into())),
        };
        Ok(Ok(self.table.push(CasHandle {
            label,
            key,
            current,
        })?))
    }

    fn current(
        &mut self,
        cas: Resource<CasHandle>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(Ok(self.table.get(&cas)?.current.clone()))
    }

    fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for KvView<'_> {
    fn get_many(
        &mut self,
        bucket: Resource<StoreHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, Error>> {
        let label = self.label(&bucket)?;
        Ok(self
            .ctx
            .backend
            .get_many(&label, &keys)
            .map(|values| keys.into_iter().zip(values).collect())
            .map_err(Error::from))
    }

    fn set_many(
        &mut self,
        bucket: Resource<StoreHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.label(&bucket)?;
        Ok(self
            .ctx
            .backend
            .set_many(&label, &key_values)
            .map_err(Error::from))
    }

    fn delete_many(
        &mut self,
        bucket: Resource<StoreHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.label(&bucket)?;
        Ok(self
            .ctx
            .backend
            .delete_many(&label, &keys)
            .map_err(Error::from))
    }
}

/// The shared types interface has types only.
impl types::Host for KvView<'_> {}
