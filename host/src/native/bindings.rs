//! Host bindings of the policy components for the native lane: the four
//! policy interfaces they export, called synchronously, and the
//! `wasi:keyvalue` they import, served synchronously.

#![allow(missing_docs, reason = "generated code")]

wasmtime::component::bindgen!({
    inline: "
        package upshift:native;

        world policies {
            import wasi:keyvalue/store@0.2.0-draft2;
            import wasi:keyvalue/atomics@0.2.0-draft2;
            import wasi:keyvalue/batch@0.2.0-draft2;
            export upshift:router/router@0.2.0;
            export upshift:auth/auth@0.3.0;
            export upshift:splitter/splitter@0.3.0;
            export upshift:ai/ai@0.4.0;
        }
    ",
    path: ["../wit"],
    imports: { default: trappable },
    with: {
        "wasi:keyvalue/store.bucket": crate::capabilities::kv::StoreHandle,
        "wasi:keyvalue/atomics.cas": crate::capabilities::kv::CasHandle,
    },
});
