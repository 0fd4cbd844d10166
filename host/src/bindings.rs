//! Host bindings for the Spin and WASI interfaces Upshift implements itself:
//! `spin:key-value@3.0.0`, `spin:variables@3.0.0` and `wasi:keyvalue@0.2.0-draft2`.

#![allow(missing_docs, reason = "generated code")]

wasmtime::component::bindgen!({
    inline: "
        package upshift:host;

        world host {
            import spin:key-value/key-value@3.0.0;
            import spin:variables/variables@3.0.0;
            import wasi:keyvalue/store@0.2.0-draft2;
            import wasi:keyvalue/atomics@0.2.0-draft2;
            import wasi:keyvalue/batch@0.2.0-draft2;
        }
    ",
    path: [
        "../wit/deps/spin-key-value@3.0.0",
        "../wit/deps/spin-variables@3.0.0",
        "../wit/deps/wasi-keyvalue-2024-10-17",
    ],
    imports: {
        "wasi:keyvalue": async | trappable,
        default: trappable,
    },
    with: {
        "spin:key-value/key-value.store": crate::capabilities::kv::StoreHandle,
        "wasi:keyvalue/store.bucket": crate::capabilities::kv::StoreHandle,
        "wasi:keyvalue/atomics.cas": crate::capabilities::kv::CasHandle,
    },
});
