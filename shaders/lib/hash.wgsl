// The counter-based hash of dropout and of MultVAE's ε, mirrored bit for bit by the CPU twins
// (`kernels::mix32`, `kernels::Dropout::keep`). An element (row, col) of a mask keyed by (seed, salt)
// hashes to counter_hash(seed, salt, row, col); dropout drops it when that is below the threshold.

fn mix32(x_in: u32) -> u32 {
    var x = x_in;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

// mix32 of four values at once (component-wise, so each lane is the scalar hash; a vec4 of u32 is
// ~2× cheaper on lavapipe than four scalar hashes with dynamic component writes).
fn mix32x4(x_in: vec4<u32>) -> vec4<u32> {
    var x = x_in;
    x = x ^ (x >> vec4<u32>(16u));
    x = x * 0x7feb352du;
    x = x ^ (x >> vec4<u32>(15u));
    x = x * 0x846ca68bu;
    x = x ^ (x >> vec4<u32>(16u));
    return x;
}

fn counter_hash(seed: u32, salt: u32, row: u32, col: u32) -> u32 {
    return mix32(seed ^ mix32(salt ^ mix32(row ^ mix32(col))));
}

// counter_hash of four columns of one row.
fn counter_hash4(seed: u32, salt: u32, row: u32, col: vec4<u32>) -> vec4<u32> {
    return mix32x4(vec4<u32>(seed) ^ mix32x4(vec4<u32>(salt) ^ mix32x4(vec4<u32>(row) ^ mix32x4(col))));
}

// Whether dropout keeps element (row, col) (`Dropout::keep`); a zero threshold keeps everything.
fn kept(threshold: u32, seed: u32, salt: u32, row: u32, col: u32) -> bool {
    return threshold == 0u || counter_hash(seed, salt, row, col) >= threshold;
}
