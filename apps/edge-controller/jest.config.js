import preset from "../../jest.preset.js";

export default { ...preset, displayName: "edge-controller", testTimeout: 120_000 };
