//! `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) over a
//! [`KvBackend`](super::KvBackend). A bucket identifier is a store label.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::{CasHandle, KvBackend, KvError, KvView, OpenDenied, StoreHandle, blocking, read};
use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use store::{Error, KeyResponse};
use upshift_model::keys;

/// How long a change of the version in force waits for the native lane to
/// load it.
const CONFIG_LOAD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

binding_errors!(Error);

impl KvView<'_> {
    fn bucket(
        &self,
        bucket: &Resource<StoreHandle>,
    ) -> wasmtime::Result<(Arc<dyn KvBackend>, Arc<str>)> {
        let handle = self.table.get(bucket)?;
        Ok((self.ctx.backend.clone(), handle.label.clone()))
    }
}

impl store::Host for KvView<'_> {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, Error>> {
        Ok(self.open_store(identifier)?.map_err(Error::from))
    }
}

impl store::HostBucket for KvView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let (backend, label) = self.bucket(&bucket)?;
        Ok(read(backend, label, move |b, label| b.get(label, &key))
            .await
            .map_err(Error::from))
    }

    async fn set(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (backend, label) = self.bucket(&bucket)?;
        Ok(blocking(move || backend.set(&label, &key, &value))
            .await
            .map_err(Error::from))
    }

    async fn delete(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (backend, label) = self.bucket(&bucket)?;
        Ok(blocking(move || backend.delete(&label, &key))
            .await
            .map_err(Error::from))
    }

    async fn exists(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let (backend, label) = self.bucket(&bucket)?;
        Ok(read(backend, label, move |b, label| b.exists(label, &key))
            .await
            .map_err(Error::from))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<StoreHandle>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        let (backend, label) = self.bucket(&bucket)?;
        // All keys in one page; a cursor (the last key seen) skips what came before.
        Ok(read(backend, label, |b, label| b.keys(label))
            .await
            .map(|keys| KeyResponse {
                keys: keys
                    .into_iter()
                    .filter(|key| cursor.as_ref().is_none_or(|c| key > c))
                    .collect(),
                cursor: None,
            })
            .map_err(Error::from))
    }

    async fn drop(&mut self, bucket: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let (backend, label) = self.bucket(&bucket)?;
        if backend.increments_inline(&label) {
            return Ok(backend.increment(&label, &key, delta).map_err(Error::from));
        }
        Ok(blocking(move || backend.increment(&label, &key, delta))
            .await
            .map_err(Error::from))
    }

    async fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let handle = self.table.delete(cas)?;
        let backend = self.ctx.backend.clone();
        let (label, key, expected) = (
            handle.label.clone(),
            handle.key.clone(),
            handle.current.clone(),
        );
        let version = (handle.key == keys::CURRENT)
            .then(|| std::str::from_utf8(&value).ok()?.trim().parse::<u64>().ok())
            .flatten();
        let swapped =
            blocking(move || backend.compare_and_swap(&label, &key, expected.as_deref(), &value))
                .await;
        Ok(match swapped {
            Ok(true) => {
                // An apply through this node answers once the native lane
                // serves the new version.
                if let (Some(version), Some(listener)) = (version, &self.ctx.config_listener) {
                    listener.load(version, CONFIG_LOAD_WAIT).await;
                }
                Ok(())
            }
            Ok(false) => {
                // Hand the guest a fresh CAS handle so it can retry.
                let key = handle.key.clone();
                let current = read(
                    self.ctx.backend.clone(),
                    handle.label.clone(),
                    move |b, label| b.get(label, &key),
                )
                .await;
                match current {
                    Ok(current) => {
                        let retry = self.table.push(CasHandle { current, ..handle })?;
                        Err(atomics::CasError::CasFailed(retry))
                    }
                    Err(error) => Err(atomics::CasError::StoreError(error.into())),
                }
            }
            Err(error) => Err(atomics::CasError::StoreError(error.into())),
        })
    }
}

impl atomics::HostCas for KvView<'_> {
    async fn new(
        &mut self,
        bucket: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<CasHandle>, Error>> {
        let (backend, label) = self.bucket(&bucket)?;
        let current = match read(backend, label.clone(), {
            let key = key.clone();
            move |b, label| b.get(label, &key)
        })
        .await
        {
            Ok(current) => current,
            Err(error) => return Ok(Err(error.into())),
        };
        Ok(Ok(self.table.push(CasHandle {
            label,
            key,
            current,
        })?))
    }

    async fn current(
        &mut self,
        cas: Resource<CasHandle>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(Ok(self.table.get(&cas)?.current.clone()))
    }

    async fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<StoreHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, Error>> {
        let (backend, label) = self.bucket(&bucket)?;
        Ok(read(backend, label, move |b, label| {
            b.get_many(label, &keys)
                .map(|values| keys.into_iter().zip(values).collect())
        })
        .await
        .map_err(Error::from))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<StoreHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (backend, label) = self.bucket(&bucket)?;
        Ok(blocking(move || backend.set_many(&label, &key_values))
            .await
            .map_err(Error::from))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<StoreHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let (backend, label) = self.bucket(&bucket)?;
        Ok(blocking(move || backend.delete_many(&label, &keys))
            .await
            .map_err(Error::from))
    }
}
