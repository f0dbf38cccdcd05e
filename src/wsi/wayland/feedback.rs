//! Parsing linux-dmabuf (v4) feedback: the compositor's format table and
//! the index arrays of its tranches. Both are outside input: every length
//! and index is checked, nothing here can panic on what a compositor sends.

/// The largest format table the layer reads (64 Ki entries); a compositor
/// sending more gets the first this many.
pub const MAX_TABLE_BYTES: usize = 16 * 65536;

/// `DRM_FORMAT_MOD_INVALID`: "implicit modifier", the layout the exporting
/// driver chooses; for the layer's dma-bufs that is linear.
pub const MOD_INVALID: u64 = 0x00ff_ffff_ffff_ffff;

/// Entries of a format table: 16 bytes each, a `u32` fourcc, 4 bytes of
/// padding and a `u64` modifier, in the machine's byte order. A trailing
/// partial entry is ignored.
pub fn parse_format_table(table: &[u8]) -> Vec<(u32, u64)> {
    table[..table.len().min(MAX_TABLE_BYTES)]
        .chunks_exact(16)
        .map(|e| {
            let format = u32::from_ne_bytes([e[0], e[1], e[2], e[3]]);
            let modifier =
                u64::from_ne_bytes([e[8], e[9], e[10], e[11], e[12], e[13], e[14], e[15]]);
            (format, modifier)
        })
        .collect()
}

/// A `dev_t` as linux-dmabuf feedback sends it (`main_device`,
/// `tranche_target_device`): the native-endian bytes of the kernel's
/// `dev_t`, 8 on Linux. Anything else is ignored.
pub fn parse_dev_t(bytes: &[u8]) -> Option<u64> {
    let b: [u8; 8] = bytes.try_into().ok()?;
    Some(u64::from_ne_bytes(b))
}

/// The `(fourcc, modifier)` pairs a tranche names: `indices` is its
/// `tranche_formats` array of native-endian `u16` indices into `table`.
/// Out-of-range indices are skipped.
pub fn resolve_tranche(table: &[(u32, u64)], indices: &[u8]) -> Vec<(u32, u64)> {
    indices
        .chunks_exact(2)
        .filter_map(|i| {
            table
                .get(u16::from_ne_bytes([i[0], i[1]]) as usize)
                .copied()
        })
        .collect()
}

/// The modifier the layer uses for `fourcc` given what the compositor
/// accepts: linear if listed, else the implicit modifier (wlroots lists only
/// INVALID for formats whose set is exactly {INVALID, LINEAR} to version-3
/// clients).
pub fn modifier_for(pairs: &[(u32, u64)], fourcc: u32) -> Option<u64> {
    let has = |m: u64| pairs.iter().any(|&(f, x)| f == fourcc && x == m);
    if has(super::MOD_LINEAR) {
        Some(super::MOD_LINEAR)
    } else if has(MOD_INVALID) {
        Some(MOD_INVALID)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(f: u32, m: u64) -> Vec<u8> {
        let mut v = f.to_ne_bytes().to_vec();
        v.extend([0u8; 4]);
        v.extend(m.to_ne_bytes());
        v
    }

    #[test]
    fn table_entries_and_indices() {
        let mut t = entry(0x3432_5258, 0);
        t.extend(entry(0x3432_5241, MOD_INVALID));
        t.extend([1, 2, 3]); // a partial entry is ignored
        let table = parse_format_table(&t);
        assert_eq!(table, vec![(0x3432_5258, 0), (0x3432_5241, MOD_INVALID)]);
        let idx: Vec<u8> = [1u16, 0, 7]
            .iter()
            .flat_map(|i| i.to_ne_bytes())
            .chain([9])
            .collect();
        assert_eq!(
            resolve_tranche(&table, &idx),
            vec![(0x3432_5241, MOD_INVALID), (0x3432_5258, 0)]
        );
    }

    #[test]
    fn linear_is_preferred_then_implicit() {
        let pairs = [
            (1, MOD_INVALID),
            (1, 0),
            (2, MOD_INVALID),
            (3, 0x0100_0000_0000_0001),
        ];
        assert_eq!(modifier_for(&pairs, 1), Some(0));
        assert_eq!(modifier_for(&pairs, 2), Some(MOD_INVALID));
        assert_eq!(modifier_for(&pairs, 3), None);
        assert_eq!(modifier_for(&pairs, 4), None);
    }

    #[test]
    fn oversized_tables_are_cut() {
        let big = vec![0u8; MAX_TABLE_BYTES + 64];
        assert_eq!(parse_format_table(&big).len(), MAX_TABLE_BYTES / 16);
    }
}
