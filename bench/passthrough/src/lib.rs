//! A pass-through proxy component: every request goes to the `upstream`
//! variable's authority as it came, body and headers streamed, and the
//! response comes back the same way. No routing, auth, split or counters.
//!
//! The load benchmark runs it on the same host as the gateway, so the
//! difference between the two is the gateway's own work and what remains is
//! the cost of the runtime's HTTP path (WASI 0.3 in, out, and back).

#[cfg(target_arch = "wasm32")]
mod proxy {
    use spin_sdk::wasip3::http::types::{ErrorCode, Request, Response, Scheme};
    use spin_sdk::wasip3::wit_bindgen::{self, FutureReader, FutureWriter};
    use spin_sdk::wasip3::{http::client, wit_future};

    #[spin_sdk::http_service]
    async fn handle(request: spin_sdk::http::Request) -> Result<Response, ErrorCode> {
        let (_, mut body) = request.into_parts();
        let request = body
            .take_unstarted()
            .ok_or_else(|| ErrorCode::InternalError(Some("body already read".into())))?;
        let upstream = spin_sdk::variables::get("upstream")
            .await
            .map_err(|e| ErrorCode::InternalError(Some(format!("variable upstream: {e:?}"))))?;
        let path = request.get_path_with_query();
        let headers = request.get_headers().clone();
        let method = request.get_method();
        let (done, result) = wit_future::new(|| Ok(()));
        let (body, trailers) = Request::consume_body(request, result);
        let (outgoing, sent) = Request::new(headers, Some(body), trailers, None);
        let invalid = |what: &str| ErrorCode::InternalError(Some(format!("invalid {what}")));
        outgoing
            .set_method(&method)
            .map_err(|()| invalid("method"))?;
        outgoing
            .set_scheme(Some(&Scheme::Http))
            .map_err(|()| invalid("scheme"))?;
        outgoing
            .set_authority(Some(&upstream))
            .map_err(|()| invalid("upstream"))?;
        outgoing
            .set_path_with_query(path.as_deref())
            .map_err(|()| invalid("path"))?;
        relay(sent, done);

        let response = client::send(outgoing).await?;
        let status = response.get_status_code();
        let headers = response.get_headers().clone();
        let (done, result) = wit_future::new(|| Ok(()));
        let (body, trailers) = Response::consume_body(response, result);
        let (back, sent) = Response::new(headers, Some(body), trailers);
        back.set_status_code(status)
            .map_err(|()| ErrorCode::HttpProtocolError)?;
        relay(sent, done);
        Ok(back)
    }

    /// Reports how a forwarded body ended to the side it came from.
    fn relay(sent: FutureReader<Result<(), ErrorCode>>, done: FutureWriter<Result<(), ErrorCode>>) {
        wit_bindgen::spawn(async move {
            let _ = done.write(sent.await).await;
        });
    }
}
