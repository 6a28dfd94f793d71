import preset from "../../jest.preset.js";

export default {
  ...preset,
  displayName: "finalizers",
  globalSetup: "@ktube/testenv/jest-global-setup",
  globalTeardown: "@ktube/testenv/jest-global-teardown",
};
