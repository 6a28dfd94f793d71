import preset from "../jest.preset.js";

export default {
  ...preset,
  displayName: "e2e",
  globalSetup: "@ktube/testenv/jest-global-setup",
  globalTeardown: "@ktube/testenv/jest-global-teardown",
  testTimeout: 300_000,
};
