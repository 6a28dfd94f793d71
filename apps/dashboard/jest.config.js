import preset from "../../jest.preset.js";

export default {
  ...preset,
  displayName: "dashboard",
  globalSetup: "@ktube/testenv/jest-global-setup",
  globalTeardown: "@ktube/testenv/jest-global-teardown",
  testTimeout: 120_000,
};
