//! linux-dmabuf v4 feedback as a compositor could send it: an arbitrary
//! format table and tranche index arrays. Never panics; every resolved pair
//! is an entry of the table; the chosen modifier is linear or implicit and
//! offered for that format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use VkLayer_syncbridge::wsi::wayland::feedback::{modifier_for, parse_format_table, resolve_tranche, MOD_INVALID};

fuzz_target!(|data: &[u8]| {
    // The first two bytes split the input into the table and the indices.
    if data.len() < 2 {
        return;
    }
    let split = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (table_bytes, indices) = data[2..].split_at(split);
    let table = parse_format_table(table_bytes);
    assert_eq!(table.len(), table_bytes.len().min(16 * 65536) / 16);
    let pairs = resolve_tranche(&table, indices);
    assert!(pairs.len() <= indices.len() / 2);
    for p in &pairs {
        assert!(table.contains(p));
    }
    // A format gets linear or the implicit modifier, and only if listed so.
    for &(fourcc, _) in pairs.iter().take(8) {
        if let Some(m) = modifier_for(&pairs, fourcc) {
            assert!(m == 0 || m == MOD_INVALID);
            assert!(pairs.contains(&(fourcc, m)));
        } else {
            assert!(!pairs.iter().any(|&(f, x)| f == fourcc && (x == 0 || x == MOD_INVALID)));
        }
    }
});
