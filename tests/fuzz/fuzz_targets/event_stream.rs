//! Server-sent event streams from providers: the parser over chunks split
//! anywhere, and every dialect's stream decoder over the events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upshift_ai::Dialect;
use upshift_ai::dialect::Decoder;
use upshift_ai::sse::Parser;

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    // The first byte says where the chunks break, as the network might.
    let step = usize::from(split).max(1);
    let mut parser = Parser::new();
    let mut events = Vec::new();
    for chunk in stream.chunks(step) {
        parser.push(chunk, &mut events);
    }
    parser.finish(&mut events);
    for dialect in Dialect::ALL {
        let mut decoder = Decoder::new(dialect);
        let mut out = Vec::new();
        for event in &events {
            if decoder.decode(event, &mut out).is_err() {
                break;
            }
        }
        decoder.finish(&mut out);
    }
});
