fn main() {
    let _ = arc_swap::ArcSwap::from_pointee(1u64);
    let _ = crossbeam_epoch::pin();
    let _ = haphazard::HazardPointer::new();
    let _ = seize::Collector::new();
    divan::main();
}
