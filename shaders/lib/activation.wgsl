// The activation of a layer's output, chosen per pipeline by the override constant ACTIVATION.

override ACTIVATION: u32 = 1u; // 0 identity, 1 ReLU, 2 tanh

fn activate(v: vec4<f32>) -> vec4<f32> {
    if (ACTIVATION == 1u) {
        return max(v, vec4<f32>(0.0));
    } else if (ACTIVATION == 2u) {
        return tanh(v);
    }
    return v;
}
