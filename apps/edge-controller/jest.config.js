import preset from "../../jest.preset.js";

export default {
  ...preset,
  displayName: "edge-controller",
  globalSetup: "@ktube/testenv/jest-global-setup",
  globalTeardown: "@ktube/testenv/jest-global-teardown",
  testTimeout: 120_000,
};
