pub fn capture(){} pub struct CaptureOptions; pub struct CaptureReport; pub const TRACE_EVENTS: &[&str] = &[];
