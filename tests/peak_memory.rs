//! The peak-memory window of `scoregen bench`, alone in its own test binary so that no other
//! test allocates while it measures.

use scoregen::app::PeakRss;

#[test]
fn a_window_sees_a_large_allocation() {
    let w = PeakRss::start();
    let Some(before) = w.peak_mib() else {
        eprintln!("skipped: /proc/self/clear_refs is not available here");
        return;
    };
    // Touch 64 MiB so that it is resident.
    let v = vec![1u8; 64 << 20];
    let after = w.peak_mib().expect("still measurable");
    assert!(v.iter().step_by(4096).all(|&b| b == 1));
    assert!(after >= before + 60.0, "{before} MiB → {after} MiB");
    drop(v);
    // A new window forgets the earlier peak.
    let w2 = PeakRss::start();
    let fresh = w2.peak_mib().expect("measurable");
    assert!(fresh < after - 30.0, "reset window {fresh} vs {after}");
}
