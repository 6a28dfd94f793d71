import preset from "../../jest.preset.js";

// The first run builds the Go checker (minutes); later runs reuse the cached binary.
export default { ...preset, displayName: "envoy-validator" };
